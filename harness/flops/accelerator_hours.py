"""python -m harness.flops.accelerator_hours: what training each paper-scale row costs, in accelerator-hours.

Reads the multiply-add counts of results/flops.csv (`python -m harness.flops`) and each
experiment's paper recipe (steps, batch), and the rates of harness/conf/cost.yaml; writes
tables/paper_cost.md. An estimate for planning, not a measurement: the utilisation is an
assumption, stated in the table.
"""
import argparse
import pathlib
from typing import Dict

import pandas as pd
from omegaconf import OmegaConf

from harness.configs import compose, registry
from harness.machine import durable

COST_CONF = compose.CONF_DIR / "cost.yaml"


def recipes() -> Dict[str, Dict[str, int]]:
  """experiment -> its paper recipe's steps and batch size."""
  out = {}
  for experiment in registry.EXPERIMENTS:
    cfg = compose.compose_config([f"experiment={experiment}", "scale=paper"])
    out[experiment] = {"steps": int(cfg.train.steps), "batch_size": int(cfg.train.batch_size)}
  return out


def estimate(flops: pd.DataFrame, recipe: Dict[str, Dict[str, int]], rates) -> pd.DataFrame:
  """One line per paper-scale row: its GFLOPs, steps, batch, training PFLOPs and the hours on
  each accelerator of `rates` (cost.yaml)."""
  rows = flops[(flops.entry == "row") & (flops.scale == "paper")]
  per_example = rates.flops_per_multiply_add * rates.backward_factor
  table = pd.DataFrame({
      "experiment": rows.experiment, "row": rows.row, "label": rows.label,
      "gflops": rows.analytic_gflops,
      "steps": rows.experiment.map(lambda e: recipe[e]["steps"]),
      "batch_size": rows.experiment.map(lambda e: recipe[e]["batch_size"])})
  table["train_pflops"] = (table.gflops * 1e9 * per_example * table.steps * table.batch_size) / 1e15
  for name, accelerator in rates.accelerators.items():
    rate = accelerator.peak_tflops * 1e12 * rates.utilisation  # FLOP/s
    table[f"{name}_hours"] = table.train_pflops * 1e15 / rate / 3600
  return table.reset_index(drop=True)


def markdown(table: pd.DataFrame, rates) -> str:
  hours = {f"{name}_hours": f"{a.label} h" for name, a in rates.accelerators.items()}
  shown = table.rename(columns={"gflops": "GFLOPs", "train_pflops": "training PFLOPs", **hours})
  total = shown[["training PFLOPs", *hours.values()]].sum()
  lines = [
      "# What training each paper-scale row costs",
      "",
      f"Training FLOPs = GFLOPs (multiply-adds per example, results/flops.csv) x "
      f"{rates.flops_per_multiply_add} x {rates.backward_factor} (forward and backward) x batch x "
      f"steps of the paper recipe; hours at {rates.utilisation:.0%} of each accelerator's dense "
      "peak, one seed. An estimate (harness/conf/cost.yaml), not a measurement.",
      "",
      shown.drop(columns=["row"]).to_markdown(index=False, floatfmt=",.1f"),
      "",
      "All rows, one seed each: " + ", ".join(f"{v:,.0f} {k}" for k, v in total.items()) + ".",
      ""]
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m harness.flops.accelerator_hours", description=__doc__)
  parser.add_argument("--flops", default="results/flops.csv")
  parser.add_argument("--md", default="tables/paper_cost.md")
  args = parser.parse_args(argv)
  if not pathlib.Path(args.flops).is_file():
    parser.exit(2, f"error: no {args.flops}; `python -m harness.flops` writes it\n")
  rates = OmegaConf.load(COST_CONF)
  table = estimate(pd.read_csv(args.flops), recipes(), rates)
  try:
    durable.write_text(args.md, markdown(table, rates), "the accelerator-hours table")
  except durable.StorageError as error:
    parser.exit(1, f"error: StorageError: {error}\n")
  print(f"wrote {args.md}")


if __name__ == "__main__":
  main()
