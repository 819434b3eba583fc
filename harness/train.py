"""One training run, in either framework, tracked in MLflow, resumable, skipped when done.

A run is keyed by the hash of its resolved config. If MLflow already holds a
FINISHED run with that hash, nothing is trained. Otherwise training starts, or
resumes from the run's last checkpoint (results/checkpoints/<hash>/) into the
same MLflow run, and ends with the same metrics as an uninterrupted run: a
train batch is a function of (seed, step) and the checkpoint holds the whole
optimizer state.
"""
import dataclasses
import json
import math
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from typing import Dict, Optional

import numpy as np
from omegaconf import DictConfig

from harness import backends, config, data as datasets, metrics, tracking
from harness.flops import analytic
from harness.progress import Progress

PACKAGES = ("jax", "flax", "optax", "torch", "numpy", "mlflow", "hydra-core")
KILL_AT_STEP_ENV = "HARNESS_KILL_AT_STEP"  # Tests: die like a killed job right after this step.


@dataclasses.dataclass
class Outcome:
  status: str  # 'skipped' (already finished), 'finished'
  run_id: str
  metrics: Dict[str, float]


def configure_runtime(runtime) -> None:
  """Caps a run's CPU threads (one run per core when runs go in parallel) and XLA's compile
  effort (the run config's `runtime`). JAX reads its flags when it starts, so the first run
  in a process decides them."""
  threads, fast_compile, flags = runtime.threads, runtime.fast_compile, []
  if threads:
    flags += ["--xla_cpu_multi_thread_eigen=false", f"intra_op_parallelism_threads={threads}"]
    import torch
    torch.set_num_threads(threads)
  if fast_compile:
    flags.append("--xla_backend_optimization_level=0")
  if flags and "jax" not in sys.modules:
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


def git_commit() -> str:
  root = pathlib.Path(__file__).parents[1]
  try:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


# Widest SIMD extension first: float32 kernels, and so a run's rounding, differ between them.
SIMD_LEVELS = ("avx512f", "avx2", "avx", "sse4_2", "asimd")


def machine() -> str:
  """The host in words, e.g. 'Linux x86_64, AMD EPYC 7B13, 2 cores, avx512f'. Two hosts that
  report the same CPU name trained the same run, same code and packages, to different
  metrics (a Table 2 proxy run: 43.33 and 43.39 mAP); the SIMD level, which picks the
  float32 kernels, is one difference the name hides."""
  cpu, flags = platform.processor(), set()
  try:
    with open("/proc/cpuinfo") as f:
      lines = f.read().splitlines()
    cpu = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), cpu)
    flags = set(next((l.split(":", 1)[1].split() for l in lines
                      if l.startswith(("flags", "Features"))), []))
  except OSError:
    pass
  simd = next((level for level in SIMD_LEVELS if level in flags), "")
  return (f"{platform.system()} {platform.machine()}, {cpu or 'unknown CPU'}, {os.cpu_count()} cores"
          + (f", {simd}" if simd else ""))


def versions() -> Dict[str, str]:
  found = {"python": sys.version.split()[0]}
  for package in PACKAGES:
    try:
      found[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      pass
  return found


def _flatten(tree, prefix="") -> Dict[str, object]:
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(_flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: tree}


class Checkpoint:
  """The training state of an unfinished run, written atomically every few steps."""

  def __init__(self, results_dir: str, config_hash: str):
    self.dir = pathlib.Path(results_dir) / "checkpoints" / config_hash

  def meta(self) -> Optional[dict]:
    path = self.dir / "meta.json"
    return json.loads(path.read_text()) if path.is_file() else None

  def save(self, runner, meta: dict) -> None:
    self.dir.mkdir(parents=True, exist_ok=True)
    state, state_tmp = self.dir / "state", self.dir / "state.tmp"
    runner.save(state_tmp)
    os.replace(state_tmp, state)
    (self.dir / "meta.tmp").write_text(json.dumps(meta))
    os.replace(self.dir / "meta.tmp", self.dir / "meta.json")  # Meta last: it vouches for state.

  def restore(self, runner) -> None:
    runner.load(self.dir / "state")

  def remove(self) -> None:
    shutil.rmtree(self.dir, ignore_errors=True)


def evaluate(runner, data, batch_size: int) -> Dict[str, float]:
  logits, labels = [], []
  for x, y in data.test_batches(batch_size):
    logits.append(runner.predict(x))
    labels.append(y)
  logits, labels = np.concatenate(logits), np.concatenate(labels)
  if data.multilabel:
    return {"test_map": 100 * metrics.mean_average_precision(logits, labels)}
  return {"test_top1": 100 * metrics.top1(logits, labels)}


def run(cfg: DictConfig) -> Outcome:
  """Trains and evaluates the run `cfg` describes (a validated config), or skips it if done."""
  cfg_hash = config.config_hash(cfg)
  artifact, row_id = cfg.experiment.name, f"{cfg.experiment.name}/{cfg.row}"
  name = f"{row_id} {cfg.framework} {cfg.scale.name} seed {cfg.seed}"
  progress = Progress(name, cfg.train.steps, cfg.runtime.progress_index, cfg.runtime.progress_total)
  tracker = tracking.Tracker(cfg.tracking)
  done = tracker.finished_run(artifact, cfg_hash)
  if done is not None:
    progress.skip(f"already finished (MLflow run {done.info.run_id[:8]})")
    return Outcome("skipped", done.info.run_id, dict(done.data.metrics))

  configure_runtime(cfg.runtime)
  from harness import runners  # Imports the frameworks: after configure_runtime.
  kind, fields = cfg.experiment.model, config.model_fields(cfg)
  model_config = backends.make_config(kind, fields)
  data = datasets.make(cfg.data, cfg.seed, model_config.image_size,
                       getattr(model_config, "num_frames", 1))
  optim = config.make_optimizer_config(cfg)
  runner = runners.make(cfg.framework, kind, fields, optim, data.multilabel, cfg.seed,
                        cache_dir=pathlib.Path(cfg.tracking.results_dir).resolve() / "jax_cache")
  lr_factor = backends.train_step_module(cfg.framework).lr_factor

  checkpoint = Checkpoint(cfg.tracking.results_dir, cfg_hash)
  meta = checkpoint.meta()
  live = {r.info.run_id for r in tracker.runs(artifact, cfg_hash)}
  if meta is not None and meta["run_id"] in live:
    checkpoint.restore(runner)
    start, run_id, prior_seconds = meta["step"], meta["run_id"], meta["seconds"]
    tracker.reopen(run_id)
    progress.note(f"resuming at step {start} (MLflow run {run_id[:8]})")
  else:
    start, prior_seconds = 0, 0.0
    for stale in tracker.runs(artifact, cfg_hash):  # Killed before any checkpoint: superseded.
      if stale.info.status == tracking.RUNNING:
        tracker.end(stale.info.run_id, tracking.KILLED)
    run_id = tracker.start(artifact, name, tags={
        "config_hash": cfg_hash, "row": cfg.row, "experiment": artifact, "framework": cfg.framework,
        "scale": cfg.scale.name, "seed": str(cfg.seed), "git_commit": git_commit(),
        "device": runner.device(), "machine": machine(), **{f"version.{k}": v for k, v in versions().items()}})
    tracker.log_params(run_id, _flatten(config.resolved(cfg)))
    gflops = sum(analytic.count(kind, model_config).values()) / 1e9
    tracker.log_metrics(run_id, [{"step": 0, "gflops": gflops, "params": runner.num_params}])

  kill_at = int(os.environ.get(KILL_AT_STEP_ENV, "-1"))
  began, pending = time.monotonic(), []
  try:
    progress.start(start)
    for step in range(start, cfg.train.steps):
      x, y = data.train_batch(step, cfg.train.batch_size)
      loss = runner.train_step(x, y)
      if not math.isfinite(loss):
        raise FloatingPointError(f"{name}: loss is {loss} at step {step}")
      lr = optim.learning_rate * float(lr_factor(step, optim.warmup_steps, optim.total_steps))
      pending.append({"step": step, "train_loss": loss, "learning_rate": lr})
      progress.update(step + 1, loss)
      last = step + 1 == cfg.train.steps
      if len(pending) >= cfg.runtime.log_every or last:
        tracker.log_metrics(run_id, pending)
        pending = []
      if cfg.runtime.checkpoint_every and (step + 1) % cfg.runtime.checkpoint_every == 0 and not last:
        checkpoint.save(runner, {"step": step + 1, "run_id": run_id,
                                 "seconds": prior_seconds + time.monotonic() - began})
      if step == kill_at:
        os._exit(137)
    train_seconds = prior_seconds + time.monotonic() - began
    results = evaluate(runner, data, cfg.train.eval_batch_size)
    results.update(wall_time_s=prior_seconds + time.monotonic() - began,
                   train_examples_per_s=(cfg.train.steps - start) * cfg.train.batch_size /
                   max(train_seconds - prior_seconds, 1e-9))
    tracker.log_metrics(run_id, [{"step": cfg.train.steps, **results}])
    tracker.end(run_id, tracking.FINISHED)
  except KeyboardInterrupt:
    tracker.end(run_id, tracking.KILLED)
    raise
  except BaseException:
    tracker.end(run_id, tracking.FAILED)
    raise
  checkpoint.remove()
  progress.finish(results)
  return Outcome("finished", run_id, results)
