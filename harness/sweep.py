"""`reproduce`: every row x framework x seed of the chosen experiments as Hydra multiruns.

One multirun per experiment (row names differ between experiments), each a sweep
over row, framework and seed, run by Hydra's joblib launcher in `jobs` parallel
processes (one CPU thread each unless runtime.threads says otherwise). A failing
run is recorded as FAILED and reported; the sweep goes on and the command exits
non-zero at the end.
"""
import sys
import traceback
from typing import Sequence

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness import config, registry

_FAILED_MARK = "RUN FAILED"


# A sweep worker may grow this much past its size after its first run before loky replaces it.
WORKER_GROWTH_LIMIT_BYTES = 4 * 2**30


def _keep_worker() -> None:
  """Lets loky (joblib's process pool) keep this worker between runs. It replaces a worker
  whose memory grew 300 MB past its size after its first task, which a switch between the
  frameworks always does: in a smoke sweep 30 of 36 runs started in a fresh process and
  paid the imports and JAX's warm-up again. Runs in one worker share the process-wide
  settings (XLA flags, thread count, core), the same for every run of a sweep, and caches;
  each run seeds what it draws."""
  try:
    from joblib.externals.loky import process_executor
  except ImportError:
    return
  if hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):
    process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_GROWTH_LIMIT_BYTES


@hydra.main(config_path=str(config.CONF_DIR), config_name="config", version_base=None)
def _job(cfg: DictConfig) -> str:
  """One run of a multirun; returns 'finished', 'skipped', 'taken over' or 'failed' (never
  raises)."""
  from harness import claims, train
  _keep_worker()
  cfg.runtime.progress_index = cfg.runtime.progress_index + HydraConfig.get().job.num + 1
  train.configure_runtime(cfg.runtime, cfg.framework)  # Before jax is imported.
  run_id = f"{cfg.experiment.name}/{cfg.row} {cfg.framework} seed {cfg.seed}"
  try:
    return train.run(config.validate(cfg)).status
  except claims.ClaimLost as error:
    print(f"{run_id}: {error}", file=sys.stderr, flush=True)
    return "taken over"
  except Exception as error:  # Reported here and recorded FAILED in MLflow by train.run.
    print(f"{_FAILED_MARK} {run_id}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    if not isinstance(error, train.SELF_EXPLAINED):
      traceback.print_exc()
    return "failed"


def reproduce(experiments: Sequence[str], frameworks: Sequence[str], seeds: Sequence[int], jobs: int,
              overrides: Sequence[str]) -> None:
  """Runs the sweep (what is finished already is skipped inside each run)."""
  config.load(list(overrides))  # A bad override fails here, once, before anything starts.
  sweeps = [(e, [r.key for r in registry.rows(e)]) for e in experiments]
  total = sum(len(rows) for _, rows in sweeps) * len(frameworks) * len(seeds)
  user_threads = any(o.startswith("runtime.threads=") for o in overrides)
  offset = 0
  for experiment, rows in sweeps:
    argv = ["harness", "--multirun", f"experiment={experiment}", f"row={','.join(rows)}",
            f"framework={','.join(frameworks)}", f"seed={','.join(map(str, seeds))}",
            f"runtime.progress_index={offset}", f"runtime.progress_total={total}",
            "hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}", "hydra/job_logging=none",
            "hydra/hydra_logging=none"]
    if jobs > 1 and not user_threads:
      argv.append("runtime.threads=1")
    GlobalHydra.instance().clear()
    saved, sys.argv = sys.argv, argv + list(overrides)
    try:
      _job()
    finally:
      sys.argv = saved
    offset += len(rows) * len(frameworks) * len(seeds)
