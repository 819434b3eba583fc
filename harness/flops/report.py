"""The FLOP report: every row at every scale, three counters, beside the published GFLOPs.

`build()` counts everything conf/flops.yaml and the registry name and returns one
DataFrame (written to results/flops.csv); `markdown()` renders it as
tables/flops.md. Nothing in either is typed by hand except what published.yaml
holds.
"""
import functools
import math
import platform
import sys
from importlib import metadata
from typing import Callable, Dict, List, Optional

import pandas as pd
from tabulate import tabulate

from harness import flops
from harness.configs import conf_schemas, published, registry
from harness.machine import durable

COUNT_COLUMNS = ["analytic_gflops", "xla_gflops", "torch_gflops", "xla_padding_gflops",
                 "xla_elementwise_gflops", "xla_total_gflops", "params", "params_torch"]
COLUMNS = (["entry", "experiment", "row", "scale", "label"] + COUNT_COLUMNS +
           ["paper_gflops", "paper_params", "paper_source", "rel_diff_to_paper"])
PAPER = "paper"


def conf() -> dict:
  return conf_schemas.load(conf_schemas.CONF_DIR / "flops.yaml", conf_schemas.FlopsFile)


def _split(row_id: str):
  experiment, key = row_id.split("/")
  return registry.get_row(experiment, key)


def _record(entry: str, row, scale: str, label: str, count: flops.Count,
            paper: Optional[published.Published]) -> Dict:
  record = dict(entry=entry, experiment=row.experiment, row=row.key, scale=scale, label=label,
                **{c: getattr(count, c) for c in COUNT_COLUMNS})
  return _with_paper(record, paper)


def _with_paper(record: Dict, paper: Optional[published.Published], params=None) -> Dict:
  record["paper_gflops"] = paper.value if paper else math.nan
  record["paper_params"] = params.value * 1e6 if params else math.nan
  record["paper_source"] = paper.source if paper else ""
  record["rel_diff_to_paper"] = (record["analytic_gflops"] / paper.value - 1) if paper else math.nan
  return record


@functools.lru_cache(maxsize=None)
def _cached_count(kind: str, fields: tuple) -> flops.Count:
  return flops.count(kind, dict(fields))


def _count(kind: str, fields, progress: Callable[[str], None], name: str) -> flops.Count:
  progress(name)
  return _cached_count(kind, tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                          for k, v in fields.items())))


def build(progress: Callable[[str], None] = lambda name: None) -> pd.DataFrame:
  """Counts every model of the report; `progress` is told the name of each before it is counted."""
  spec = conf()
  records: List[Dict] = []
  for row in registry.rows():
    for scale in registry.scales(row.experiment):
      count = _count(row.kind, registry.model_fields(row.experiment, row.key, scale), progress,
                     f"{row.id} @ {scale}")
      paper = published.row(row.experiment, row.key, "gflops") if scale == PAPER else None
      records.append(_record("row", row, scale, row.label, count, paper))

  for name, ref in spec["reference"].items():
    row = _split(ref["row"])
    fields = {**registry.model_fields(row.experiment, row.key, PAPER), **ref.get("override", {})}
    count = _count(row.kind, fields, progress, f"reference {name}")
    record = _record("reference", row, PAPER, ref["label"], count, published.model(name, "gflops"))
    records.append({**record, "row": name})

  for row_id, readings in spec["interpretations"].items():
    row = _split(row_id)
    base = registry.model_fields(row.experiment, row.key, PAPER)
    for name, reading in readings.items():
      count = _count(row.kind, {**base, **reading["override"]}, progress, f"{row_id} read as {name}")
      record = _record("interpretation", row, PAPER, reading["label"], count,
                       published.row(row.experiment, row.key, "gflops"))
      records.append({**record, "row": f"{row.key}:{name}"})

  for name, part in spec["module_parts"].items():
    row = _split(part["row"])
    count = _count(row.kind, registry.model_fields(row.experiment, row.key, PAPER), progress,
                   f"{part['row']} module parts")
    names = [f"module.{p}" for p in part["parts"]]
    record = dict(entry="module_part", experiment=row.experiment, row=f"{row.key}:{name}",
                  scale=PAPER, label=part["label"],
                  analytic_gflops=sum(count.analytic_parts[f"module_{p}"] for p in part["parts"]),
                  xla_gflops=math.nan, torch_gflops=sum(count.torch_parts[n] for n in names),
                  xla_padding_gflops=math.nan, xla_elementwise_gflops=math.nan,
                  xla_total_gflops=math.nan, params=math.nan,
                  params_torch=sum(count.params_parts[n] for n in names))
    records.append(_with_paper(record, published.model(part["published"], "gflops"),
                               published.model(part["published"], "params_m")))

  frame = pd.DataFrame.from_records(records, columns=COLUMNS)
  frame.index = frame["entry"] + ":" + frame["experiment"] + "/" + frame["row"] + "@" + frame["scale"]
  frame.index.name = "id"
  return frame


def write_csv(frame: pd.DataFrame, path) -> None:
  durable.write_file(path, lambda out: frame.to_csv(out, float_format="%.12g"), "the FLOP counts")


def read_csv(path) -> pd.DataFrame:
  frame = pd.read_csv(path, index_col="id")
  frame["paper_source"] = frame["paper_source"].fillna("")
  return frame


def agreement(frame: pd.DataFrame) -> Dict[str, float]:
  """Largest relative distance of the XLA and torch counts from the analytic one, over all
  models with all three counts."""
  counted = frame.dropna(subset=["xla_gflops"])
  return {c: float((counted[c] / counted["analytic_gflops"] - 1).abs().max())
          for c in ("xla_gflops", "torch_gflops")}


# --- Markdown. ------------------------------------------------------------------------


def _g(value: float, digits: int = 2) -> str:
  return "" if pd.isna(value) else f"{value:,.{digits}f}"


def _pct(value: float) -> str:
  return "" if pd.isna(value) else f"{100 * value:+.2f}%"


def _params(value: float) -> str:
  return "" if pd.isna(value) else f"{value / 1e6:,.2f}M"


def _verdict(rel: float) -> str:
  if pd.isna(rel):
    return ""
  return "matches" if abs(rel) <= conf()["match_tolerance"] else "**does not match**"


def _md(frame: pd.DataFrame, columns: Dict[str, Callable], **kwargs) -> str:
  body = [[render(r) for render in columns.values()] for _, r in frame.iterrows()]
  return tabulate(body, headers=list(columns), tablefmt="github", **kwargs)


def _environment() -> str:
  versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("jax", "flax", "torch"))
  return f"Python {sys.version.split()[0]}, {versions}; {platform.system()} {platform.machine()}"


def markdown(frame: pd.DataFrame) -> str:
  tol = conf()["match_tolerance"]
  rows = frame[frame.entry == "row"]
  paper_rows = rows[rows.scale == PAPER]
  worst = agreement(frame)
  paper_columns = {
      "row": lambda r: r.label,
      "paper": lambda r: _g(r.paper_gflops),
      "analytic": lambda r: _g(r.analytic_gflops),
      "XLA": lambda r: _g(r.xla_gflops),
      "torch": lambda r: _g(r.torch_gflops),
      "vs paper": lambda r: _pct(r.rel_diff_to_paper),
      "": lambda r: _verdict(r.rel_diff_to_paper),
      "XLA elementwise": lambda r: _g(r.xla_elementwise_gflops),
      "XLA padding taps": lambda r: _g(r.xla_padding_gflops),
      "params": lambda r: _params(r.params),
  }
  out = [
      "# Compute accounting: GFLOPs and parameters of every row",
      "",
      "Generated by `nox -s flops` (`python -m harness.flops`) from the models themselves; "
      "the data is `results/flops.csv`. GFLOPs count one multiply-add as one FLOP, as the paper "
      "does, per example, forward only. Published numbers come from "
      "`harness/conf/published.yaml`, with their sources.",
      "",
      "Three counters, independent of each other:",
      "",
      "- **analytic**: formulas per module from the architecture (`harness/flops/analytic.py`): "
      "the multiply-adds of matrix products and convolutions, every kernel tap counted.",
      "- **XLA**: `cost_analysis()` of the jitted Flax forward, lowered on abstract shapes (no "
      "memory), halved. Its dot and convolution instructions are shown here; the rest of what "
      "XLA counts (norms, activations, softmax, residual adds, VectT's q*k products) is the "
      "*XLA elementwise* column, and the convolution taps on zero padding, which XLA leaves "
      "out and the other two count, the *XLA padding taps* column; "
      "`xla_total_gflops` in the CSV = XLA - padding taps + elementwise.",
      "- **torch**: `torch.utils.flop_counter.FlopCounterMode` over the PyTorch forward on the "
      "meta device (no memory), halved.",
      "",
      f"Agreement over all {len(rows)} row/scale pairs and the extra models: largest distance "
      f"from the analytic count {100 * worst['xla_gflops']:.4f}% (XLA), "
      f"{100 * worst['torch_gflops']:.4f}% (torch). Parameters agree between the frameworks "
      f"for {int((rows.params == rows.params_torch).sum())} of {len(rows)}.",
      "",
      f"A row *matches* when its analytic GFLOPs are within {100 * tol:.1f}% of the paper's.",
      "",
      f"Environment: {_environment()}.",
  ]
  for experiment in registry.EXPERIMENTS:
    part = paper_rows[paper_rows.experiment == experiment]
    out += ["", f"## {registry.title(experiment)} (paper scale)", "",
            f"Paper scale: {registry.describe_scale(experiment, PAPER)}; per row, as in "
            f"`harness/conf/experiment/{experiment}.yaml`.", "", _md(part, paper_columns)]

  out += ["", "## Rows that do not match, and the readings tried", "",
          "The model as built is what the harness trains. For rows whose published GFLOPs it "
          "does not give, other readings of the row's name were counted (analytic, XLA and "
          "torch agree for each); none of them is adopted.", ""]
  unmatched = paper_rows[paper_rows.rel_diff_to_paper.abs() > tol]
  readings = frame[frame.entry == "interpretation"]
  table = []
  for _, r in unmatched.iterrows():
    table.append([r.label, "as built", _g(r.paper_gflops), _g(r.analytic_gflops),
                  _pct(r.rel_diff_to_paper), _verdict(r.rel_diff_to_paper)])
    for _, i in readings[readings.row.str.startswith(f"{r.row}:")].iterrows():
      table.append(["", i.label, "", _g(i.analytic_gflops), _pct(i.rel_diff_to_paper),
                    _verdict(i.rel_diff_to_paper)])
  out.append(tabulate(table, headers=["row", "reading", "paper", "GFLOPs", "vs paper", ""],
                      tablefmt="github"))
  matches_all: Dict[str, bool] = {}
  for _, reading in readings.iterrows():
    name = reading.row.split(":")[1]
    matches_all[name] = matches_all.get(name, True) and abs(reading.rel_diff_to_paper) <= tol
  for name in sorted(n for n, ok in matches_all.items() if ok):
    label = readings[readings.row.str.endswith(f":{name}")].label.iloc[0]
    out += ["", f"The reading *{label}* matches every row it was tried on."]

  out += ["", "## Main-paper figures the paper-scale configs also give", "",
          _md(frame[frame.entry == "reference"], {
              "model": lambda r: r.label, "paper": lambda r: _g(r.paper_gflops),
              "analytic": lambda r: _g(r.analytic_gflops), "XLA": lambda r: _g(r.xla_gflops),
              "torch": lambda r: _g(r.torch_gflops), "vs paper": lambda r: _pct(r.rel_diff_to_paper),
              "": lambda r: _verdict(r.rel_diff_to_paper), "source": lambda r: r.paper_source})]

  out += ["", "## Table 2 module cost at 64 frames beside the published per-module figures", "",
          "Parts of the paper-scale bottleneck module of the TokenLearner + VectT + TokenFuser row "
          "(7x7 grid per frame, 64 frames, 128 -> 492 channels, S = 8), counted analytically and by "
          "torch per submodule. The paper does not say what its per-module figures include.", "",
          _md(frame[frame.entry == "module_part"], {
              "part": lambda r: r.label, "paper GFLOPs": lambda r: _g(r.paper_gflops),
              "analytic": lambda r: _g(r.analytic_gflops, 3), "torch": lambda r: _g(r.torch_gflops, 3),
              "vs paper": lambda r: _pct(r.rel_diff_to_paper), "paper params": lambda r: _params(r.paper_params),
              "params": lambda r: _params(r.params_torch), "source": lambda r: r.paper_source})]

  proxy = rows[rows.scale != PAPER]
  out += ["", "## Proxy scale", "",
          "The scaled-down models the harness trains on CPU (MFLOPs = 1e6 multiply-adds).", "",
          _md(proxy, {
              "experiment": lambda r: r.experiment, "row": lambda r: r.label,
              "analytic MFLOPs": lambda r: _g(1e3 * r.analytic_gflops),
              "XLA": lambda r: _g(1e3 * r.xla_gflops), "torch": lambda r: _g(1e3 * r.torch_gflops),
              "XLA elementwise": lambda r: _g(1e3 * r.xla_elementwise_gflops),
              "XLA padding taps": lambda r: _g(1e3 * r.xla_padding_gflops),
              "params": lambda r: f"{int(r.params):,}"})]
  return "\n".join(out) + "\n"
