"""python -m harness.bench [--steps N] [--repeats N] [--experiments table1,...] [--only data|decode]

Measures, one process at a time: each framework's float32 matmul roof on one core
and on all; every proxy row's training throughput in JAX and in PyTorch on one
thread; the Table 1 proxy base built from each framework's stock blocks; and the
vector attention at the paper's Table 2 size, naive and chunked; where one proxy
run's time goes; the forward latency of three paper-scale models; and how fast the
file loaders decode train examples at the paper's input sizes, in 0, 1 and 2 worker
processes, and on one core beside a plain PIL loop making the same crops (with the cores per GPU
each experiment needs). Writes results/bench.csv (a row per proxy row) and bench-<part>.csv beside
it for the others, and renders tables/bench.md and the generated summary in
docs/performance.md (--doc) from them. --report-only renders both again from the CSVs,
measuring nothing; --only data (or decode) measures that part alone, writes its CSV and
renders tables/bench.md again if results/bench.csv is there.
"""
import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from typing import Sequence

import pandas as pd
from tokenlearner_spec import FRAMEWORKS

from harness.bench import report
from harness.configs import registry
from harness.machine import durable, host




def probe(*args: str) -> dict:
  done = subprocess.run([sys.executable, "-m", "harness.bench.probe", *map(str, args)],
                        capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(f"probe {' '.join(map(str, args))} failed: {done.stderr.strip()[-2000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def measure_roofs() -> pd.DataFrame:
  records = []
  for framework in FRAMEWORKS:
    for threads in sorted({1, os.cpu_count() or 1}):
      gflops = probe("roof", framework, threads)["gflops_per_s"]
      print(f"bench: roof {framework} {threads} thread(s): {gflops:.1f} GFLOP/s", file=sys.stderr)
      records.append({"framework": framework, "threads": threads, "gflops_per_s": gflops})
  return pd.DataFrame.from_records(records)


def measure_peers(steps: int, repeats: int) -> pd.DataFrame:
  records = []
  for framework in FRAMEWORKS:
    speed = probe("peer", framework, steps, repeats)["examples_per_s"]
    print(f"bench: stock-block peer {framework}: {speed:.1f} examples/s", file=sys.stderr)
    records.append({"framework": framework, "model": "table1/base", "peer_examples_per_s": speed})
  return pd.DataFrame.from_records(records)


def measure_vectt(repeats: int) -> pd.DataFrame:
  chunk = registry.model_fields("table2", "tl_vectt_tokenfuser", "paper")["vectt_chunk_size"]
  records = []
  for framework in FRAMEWORKS:
    for chunk_size in (0, chunk):
      cost = probe("vectt", framework, chunk_size, repeats)
      print(f"bench: VectT at paper size, {framework}, chunk {chunk_size}: {cost['seconds']:.2f} s, "
            f"{cost['peak_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
      records.append({"framework": framework, "chunk_size": chunk_size, **cost})
  return pd.DataFrame.from_records(records)


SPLIT_ROW = ("table1", "tl16_at_12")
LATENCY_ROWS = (("table1", "base"), ("table1", "tl16_at_12"), ("figure1", "tokenfuser_tl16"))


def measure_latency(repeats: int) -> pd.DataFrame:
  records = []
  for experiment, row in LATENCY_ROWS:
    for framework in FRAMEWORKS:
      seconds = probe("latency", framework, experiment, row, repeats)["seconds"]
      print(f"bench: paper-scale forward, batch 1, {experiment}/{row} {framework}: {seconds:.2f} s",
            file=sys.stderr)
      records.append({"framework": framework, "model": f"{experiment}/{row}", "seconds": seconds})
  return pd.DataFrame.from_records(records)


DATA_WORKERS = (0, 1, 2)
DATA_BATCH = {"imagenet": 8, "charades": 2}  # Examples per batch: a clip is 64 images.


def paper_inputs():
  """(source, image size, frames) of each input the paper's models take: ImageNet images
  for the ViTs (Table 1, Figure 1), Charades clips for the video models (Table 2)."""
  found = set()
  for row in registry.rows():
    fields = registry.model_fields(row.experiment, row.key, "paper")
    source = "charades" if row.kind == "video" else "imagenet"
    found.add((source, fields["image_size"], fields.get("num_frames", 1)))
  return sorted(found)


def measure_data(steps: int) -> pd.DataFrame:
  records = []
  for source, size, frames in paper_inputs():
    for workers in DATA_WORKERS:
      speed = probe("data", source, size, frames, workers, steps, DATA_BATCH[source])
      print(f"bench: {source} at {size} px x {frames} frame(s), {workers} worker(s): "
            f"{speed['examples_per_s']:.1f} examples/s, {speed['examples_per_s_per_worker']:.1f} "
            f"per worker (first batch {speed['first_batch_s']:.1f} s)", file=sys.stderr)
      records.append({"source": source, "image_size": size, "frames": frames, "workers": workers,
                      "batch_size": DATA_BATCH[source], "steps": steps, **speed})
  # Its own provenance: `--only data` measures it apart from the other parts.
  stamp = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": host.git_commit(), "machine": host.machine()}
  return pd.DataFrame.from_records(records).assign(**stamp)


DECODE_BATCH = {"imagenet": 64, "charades": 1}
DECODE_REPEATS = 15  # Alternating, harness then plain loop: the median of each resists drift.


def measure_decode() -> pd.DataFrame:
  """Per core, at each paper input: the harness's file loader beside a plain PIL uint8 loop
  making the same crops, timed in turn in one process (probe `decode`)."""
  records = []
  for source, size, frames in paper_inputs():
    speed = probe("decode", source, size, frames, DECODE_BATCH[source], DECODE_REPEATS)
    print(f"bench: decoding {source} at {size} px x {frames} frame(s) on one core: harness "
          f"{speed['harness_examples_per_s']:.1f}, plain PIL loop {speed['peer_examples_per_s']:.1f} "
          "examples/s", file=sys.stderr)
    records.append({"source": source, "image_size": size, "frames": frames,
                    "batch_size": DECODE_BATCH[source], "repeats": DECODE_REPEATS, **speed})
  stamp = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": host.git_commit(), "machine": host.machine()}
  return pd.DataFrame.from_records(records).assign(**stamp)


def measure_split() -> pd.DataFrame:
  """One proxy run per framework through `python -m harness run` (one thread, a fresh store),
  its time by phase as the run logs it."""
  from mlflow.tracking import MlflowClient
  experiment, row = SPLIT_ROW
  records = []
  for framework in FRAMEWORKS:
    with tempfile.TemporaryDirectory() as results:
      subprocess.run([sys.executable, "-m", "harness", "run", f"experiment={experiment}", f"row={row}",
                      "scale=proxy", f"framework={framework}", "runtime.threads=1",
                      f"tracking.results_dir={results}"], check=True, capture_output=True, text=True)
      store = MlflowClient(f"sqlite:///{results}/mlflow.db")
      (run,) = store.search_runs([store.get_experiment_by_name(experiment).experiment_id])
    phases = {k[len("time_"):-len("_s")]: v for k, v in run.data.metrics.items()
              if k.startswith("time_") and k.endswith("_s")}
    print(f"bench: time split of {experiment}/{row} {framework}: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()), file=sys.stderr)
    records.append({"framework": framework, "run": f"{experiment}/{row}",
                    "wall_time_s": run.data.metrics["wall_time_s"], **phases})
  return pd.DataFrame.from_records(records)


def measure_rows(experiments: Sequence[str], steps: int, repeats: int, flops: pd.DataFrame,
                 roofs: pd.DataFrame) -> pd.DataFrame:
  records = []
  one_core = roofs[roofs.threads == 1].set_index("framework").gflops_per_s
  for row in registry.rows():
    if row.experiment not in experiments:
      continue
    macs = flops.loc[f"row:{row.id}@proxy", "analytic_gflops"]
    record = {"experiment": row.experiment, "row": row.key, "label": row.label,
              "gmacs_per_example": macs}
    for framework in FRAMEWORKS:
      result = probe("train", framework, row.experiment, row.key, steps, repeats)
      speed = result["examples_per_s"]
      # A training step: forward and backward, three forward passes; a multiply-add: 2 FLOPs.
      achieved = speed * macs * 3 * 2
      record.update({"batch_size": result["batch_size"], f"{framework}_examples_per_s": speed,
                     f"{framework}_gflops_per_s": achieved,
                     f"{framework}_roof_fraction": achieved / one_core[framework]})
      print(f"bench: {row.id} {framework}: {speed:.1f} examples/s, {achieved:.1f} GFLOP/s",
            file=sys.stderr)
    record["jax_over_torch"] = record["jax_examples_per_s"] / record["torch_examples_per_s"]
    records.append(record)
  frame = pd.DataFrame.from_records(records)
  for experiment, base in report.BASE_ROWS.items():
    at = frame.experiment == experiment
    if not (at & (frame.row == base)).any():
      continue
    reference = frame[at & (frame.row == base)].iloc[0]
    frame.loc[at, "flop_ratio_vs_base"] = reference.gmacs_per_example / frame.loc[at, "gmacs_per_example"]
    for framework in FRAMEWORKS:
      column = f"{framework}_examples_per_s"
      frame.loc[at, f"{framework}_speedup_vs_base"] = frame.loc[at, column] / reference[column]
  return frame


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
  parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is kept")
  parser.add_argument("--experiments", default=",".join(registry.EXPERIMENTS))
  parser.add_argument("--flops", default="results/flops.csv")
  parser.add_argument("--out", default="results/bench.csv")
  parser.add_argument("--table", default="tables/bench.md")
  parser.add_argument("--doc", default="docs/performance.md", help="whose generated bench block to rewrite")
  parser.add_argument("--report-only", action="store_true", help="render from --out's CSVs, measure nothing")
  parser.add_argument("--only", choices=report.OPTIONAL_PARTS,
                      help="measure this part alone (its CSV beside --out)")
  args = parser.parse_args(argv)
  if not args.only and not report.doc_block(args.doc):
    parser.error(f"{args.doc} has no generated bench block to rewrite ({report.DOC_BEGIN} ...)")
  if args.report_only:
    rows, parts, meta = report.read(args.out)
    durable.write_text(args.table, report.markdown(rows, parts, meta), "the bench table")
    report.update_doc(args.doc, report.doc_section(rows, parts, meta))
    print(f"bench: rendered {args.table} and {args.doc}'s bench block from {args.out}", file=sys.stderr)
    return 0
  if args.only:
    if args.steps < 1:
      parser.error("--steps must be positive")
    measured = measure_data(args.steps) if args.only == "data" else measure_decode()
    path = report.beside(args.out, args.only)
    report.write_csv(measured, path)
    print(f"bench: wrote {path}", file=sys.stderr)
    if pathlib.Path(args.out).exists():  # The other parts as last measured, this one new.
      rows, parts, meta = report.read(args.out)
      durable.write_text(args.table, report.markdown(rows, parts, meta), "the bench table")
      print(f"bench: rendered {args.table} from {args.out} and its parts", file=sys.stderr)
    return 0
  experiments = [e for e in args.experiments.split(",") if e]
  unknown = sorted(set(experiments) - set(registry.EXPERIMENTS))
  if unknown or args.steps < 1 or args.repeats < 1:
    parser.error(f"--experiments must name {', '.join(registry.EXPERIMENTS)} (got {unknown}); "
                 "--steps and --repeats must be positive")
  flops = pd.read_csv(args.flops, index_col="id")
  roofs = measure_roofs()
  rows = measure_rows(experiments, args.steps, args.repeats, flops, roofs)
  peers = measure_peers(args.steps, args.repeats)
  vectt = measure_vectt(args.repeats)
  split = measure_split()
  latency = measure_latency(args.repeats)
  data = measure_data(args.steps)
  decode = measure_decode()
  meta = {"machine": host.machine(), "commit": host.git_commit(),
          "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
          "versions": ", ".join(f"{k} {v}" for k, v in host.versions().items()),
          "steps": args.steps, "repeats": args.repeats}
  parts = {"roof": roofs, "peers": peers, "vectt": vectt, "split": split, "latency": latency,
           "data": data, "decode": decode}
  rows, parts, meta = report.write(rows, parts, meta, args.out, args.table)
  print(f"bench: wrote {args.out} (and -roof, -peers, -vectt, -split, -latency, -data, -decode beside it), "
        f"{args.table}", file=sys.stderr)
  if sorted(experiments) == sorted(registry.EXPERIMENTS):  # Only a full run speaks for the doc.
    report.update_doc(args.doc, report.doc_section(rows, parts, meta))
    print(f"bench: rewrote {args.doc}'s bench block", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
