"""python -m harness.bench.accelerator [--experiments table1,figure1,table2] [--frameworks jax,torch]
   [--steps N] [--out CSV] [--peak-tflops T] [Hydra overrides]

A few training steps of each experiment's model in each framework, on whatever accelerator the
process finds, through the real input pipeline: at paper scale (the default) the file loaders
read synthetic JPEGs the size of ImageNet's and Charades' (harness/bench/probe.py's fixture),
decoded by `runtime.data_workers` Grain workers, and the step computes in
`train.precision` (bfloat16 unless told otherwise). One process per framework, as a run is.
Prints, per model and framework: the median step time and examples per second after the first
(compiling) step, the peak device memory, the model FLOPs utilisation against the device's
dense peak (harness/conf/cost.yaml, or --peak-tflops), and the share of the time the loop
waited for its data. Any Hydra override applies, e.g. scale=smoke for a check on a CPU.
"""
import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Sequence

import pandas as pd
from omegaconf import OmegaConf
from tabulate import tabulate
from tokenlearner_spec import FRAMEWORKS

from harness.configs import registry

DEFAULTS = ("scale=paper", "train.precision=bfloat16")
# The rows measured: each experiment's TokenLearner model, the paper's subject.
ROWS = {"table1": "tl16_at_12", "figure1": "tokenfuser_tl16", "table2": "tl_vectt_tokenfuser"}
# A batch one 80 GB device holds in bfloat16, for each: a step of the paper's global batch (512
# images, 256 clips) is one such part per device and micro-batch. train.batch_size= sets another.
BATCH = {"table1": 32, "figure1": 64, "table2": 8}
FILE_SOURCES = ("imagenet", "charades")


def peak_tflops(device: str) -> Optional[float]:
  """The dense bfloat16 peak of the device a runner names ('torch:cuda:NVIDIA H100 80GB HBM3'),
  from harness/conf/cost.yaml's accelerators whose label names it; None for others (a CPU)."""
  from harness.flops.accelerator_hours import COST_CONF
  for accelerator in OmegaConf.load(COST_CONF).accelerators.values():
    name = accelerator.label.split(" (")[0].replace("NVIDIA ", "")  # 'H100 SXM', 'TPU v3 core'
    model = " ".join(name.split()[:2]) if name.startswith("TPU") else name.split()[0]  # 'H100', 'TPU v3'
    if model.lower() in device.lower():
      return float(accelerator.peak_tflops)
  return None


def _peak_memory_bytes(framework: str, runner) -> int:
  """The device's peak memory in use; the process's peak resident memory on a CPU."""
  if framework == "torch":
    import torch
    if runner.target.type == "cuda":
      return int(torch.cuda.max_memory_allocated(runner.target))
  else:
    import jax
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
      return int(stats["peak_bytes_in_use"])
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(experiment: str, framework: str, steps: int, overrides: Sequence[str],
            peak: Optional[float]) -> dict:
  """`steps` steps of the experiment's row in this process; see the module's docstring."""
  import contextlib

  from harness import data as datasets
  from harness.bench.probe import _data_fixture
  from harness.configs import compose, run_spec
  from harness.data import pipeline
  from harness.flops import analytic
  from harness.run import device_feed
  from harness.twins import runners
  with tempfile.TemporaryDirectory() as tmp:
    cfg = compose.compose_config([*DEFAULTS, f"experiment={experiment}", f"row={ROWS[experiment]}",
                                  f"framework={framework}", "train.pretrained=",
                                  f"train.batch_size={BATCH[experiment]}", *overrides])
    if cfg.data.source in FILE_SOURCES:
      cfg.data.root = str(_data_fixture(cfg.data.source, pathlib.Path(tmp)))
    spec = run_spec.of(compose.validate(cfg, data_files=False))
    data = datasets.make(cfg.data, 0, spec.model.image_size, getattr(spec.model, "num_frames", 1))
    runner = runners.make(framework, spec.kind, spec.fields, spec.optimizer, data.multilabel, 0,
                          precision=cfg.train.precision, micro_batches=cfg.runtime.micro_batches,
                          compiled=cfg.runtime.compiled_step)
    waits: List[float] = []
    times: List[float] = []
    batches = pipeline.train_batches(data, 0, steps, cfg.train.batch_size, workers=cfg.runtime.data_workers)
    with contextlib.closing(batches):
      # Put ahead as the training loop puts them; each step is waited for, to time it, and the
      # wait for data includes the put (the copy's start) of the batch steps ahead.
      on_device = device_feed.ahead(runner.put, batches)
      for step in range(steps):
        began = time.perf_counter()
        batch = next(on_device)
        fed = time.perf_counter()
        runner.fetch([runner.train_step(step, batch)])  # Waits: the step has finished.
        waits.append(fed - began)
        times.append(time.perf_counter() - began)
    device = runner.device()
    memory = _peak_memory_bytes(framework, runner)
  timed = times[1:] or times  # After the first step, which compiles.
  step_s = statistics.median(timed)
  examples_per_s = cfg.train.batch_size / step_s
  flops = sum(analytic.count(spec.kind, spec.model).values()) * 2 * 3  # Forward and backward.
  peak = peak or peak_tflops(device)
  return {"experiment": experiment, "row": ROWS[experiment], "framework": framework, "device": device,
          "precision": cfg.train.precision, "batch_size": cfg.train.batch_size,
          "data_workers": cfg.runtime.data_workers, "steps": steps, "step_s": step_s,
          "examples_per_s": examples_per_s, "peak_memory_gb": memory / 1e9,
          "mfu": examples_per_s * flops / (peak * 1e12) if peak else None,
          "data_wait_share": sum(waits[1:] or waits) / sum(timed)}


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m harness.bench.accelerator", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--experiments", default=",".join(registry.EXPERIMENTS))
  parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
  parser.add_argument("--steps", type=int, default=6, help="steps per model, the first compiling")
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="the device's dense peak, where cost.yaml does not know it")
  parser.add_argument("--out", default=None, help="also write the figures to this CSV")
  parser.add_argument("--one", nargs=2, metavar=("EXPERIMENT", "FRAMEWORK"), help=argparse.SUPPRESS)
  args, overrides = parser.parse_known_args(argv)
  if args.one:  # In a process of its own: one framework's devices and memory peak at a time.
    print(json.dumps(measure(*args.one, args.steps, overrides, args.peak_tflops)))
    return 0
  experiments, frameworks = args.experiments.split(","), args.frameworks.split(",")
  unknown = sorted(set(experiments) - set(ROWS)) + sorted(set(frameworks) - set(FRAMEWORKS))
  if unknown or args.steps < 2:
    parser.error(f"unknown {', '.join(unknown)}; --experiments from {', '.join(ROWS)}, --frameworks "
                 f"from {', '.join(FRAMEWORKS)}, --steps at least 2" if unknown else "--steps must be at least 2")
  records = []
  for experiment in experiments:
    for framework in frameworks:
      argv_one = ["--one", experiment, framework, "--steps", str(args.steps), *overrides]
      if args.peak_tflops:
        argv_one += ["--peak-tflops", str(args.peak_tflops)]
      done = subprocess.run([sys.executable, "-m", "harness.bench.accelerator", *argv_one],
                            capture_output=True, text=True)
      if done.returncode:
        print(f"accelerator: {experiment} {framework} failed: {done.stderr.strip()[-1500:]}", file=sys.stderr)
        return 1
      records.append(json.loads(done.stdout.strip().splitlines()[-1]))
      print(f"accelerator: {experiment} {framework}: {records[-1]['examples_per_s']:.1f} examples/s",
            file=sys.stderr, flush=True)
  table = pd.DataFrame.from_records(records)
  if args.out:
    table.to_csv(args.out, index=False, float_format="%.6g")
  print(tabulate(table.drop(columns=["steps"]), headers="keys", showindex=False, floatfmt=".3g",
                 missingval="–"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
