"""`reproduce`: every row x framework x seed of the chosen experiments as Hydra multiruns.

One multirun per experiment (row names differ between experiments) and seed list (a
framework may run fewer seeds), each a sweep over row, framework and seed (`curves`
sweeps its own axes through `multirun`), run by Hydra's joblib launcher in `jobs` parallel
processes (one CPU thread each unless runtime.threads says otherwise). A failing
run is recorded as FAILED and reported; the sweep goes on and the command exits
non-zero at the end.
"""
import math
import sys
import traceback
from typing import Dict, Mapping, Sequence

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


def multirun(experiment: str, axes: Dict[str, Sequence], jobs: int, overrides: Sequence[str],
             offset: int = 0, total: int = 0) -> None:
  """One Hydra multirun of `experiment` over the product of `axes` (override key -> values); a
  run's progress line counts it from `offset` of `total` (default: this multirun's size)."""
  size = math.prod(len(values) for values in axes.values())
  argv = ["harness", "--multirun", f"experiment={experiment}",
          *(f"{key}={','.join(map(str, values))}" for key, values in axes.items()),
          f"runtime.progress_index={offset}", f"runtime.progress_total={total or size}",
          "hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}", "hydra/job_logging=none",
          "hydra/hydra_logging=none"]
  if jobs > 1 and not any(o.startswith("runtime.threads=") for o in overrides):
    argv.append("runtime.threads=1")
  GlobalHydra.instance().clear()
  saved, sys.argv = sys.argv, argv + list(overrides)
  try:
    _job()
  finally:
    sys.argv = saved


def reproduce(experiments: Sequence[str], seeds: Mapping[str, Mapping[str, Sequence[int]]], jobs: int,
              overrides: Sequence[str]) -> None:
  """Runs the sweep of `seeds` (framework -> experiment -> its seeds); what is finished already
  is skipped inside each run. Frameworks with the same seeds in an experiment share a multirun."""
  config.load(list(overrides))  # A bad override fails here, once, before anything starts.
  sweeps = []
  for e in experiments:
    by_seeds: Dict[tuple, list] = {}
    for framework, per_experiment in seeds.items():
      by_seeds.setdefault(tuple(per_experiment[e]), []).append(framework)
    sweeps += [(e, [r.key for r in registry.rows(e)], list(fws), list(s))
               for s, fws in by_seeds.items() if s]
  total = sum(len(rows) * len(fws) * len(s) for _, rows, fws, s in sweeps)
  offset = 0
  for experiment, rows, frameworks, its_seeds in sweeps:
    multirun(experiment, {"row": rows, "framework": frameworks, "seed": its_seeds}, jobs, overrides,
             offset, total)
    offset += len(rows) * len(frameworks) * len(its_seeds)
