"""The `tables` verb: refresh the run export from MLflow (unless offline), then build tables/."""
import pathlib
from typing import Callable, Iterable, Optional, Sequence

from harness import config, registry, status, tracking
from harness.tables import build, runs as run_export

FLOPS_CSV = "results/flops.csv"  # Written by `nox -s flops`; committed.


def output_dir(root, scale: str) -> pathlib.Path:
  """tables/ for the proxy scale (the committed artifacts), tables/<scale>/ for the others."""
  return pathlib.Path(root) if scale == "proxy" else pathlib.Path(root) / scale


def refresh_export(cfg, plan: Callable[[], Iterable[status.Planned]], force: bool = False) -> pathlib.Path:
  """Writes results/runs-<scale>.csv from the planned runs `plan()` finds in MLflow, unless that
  would drop finished runs the current export holds (say, a fresh store on a clone whose
  export came from a full run). `plan` is only called when there is a store to read."""
  path = run_export.csv_path(cfg.tracking.results_dir, cfg.scale.name)
  if not tracking.store_exists(cfg.tracking):
    print(f"tables: no MLflow store at {tracking.tracking_uri(cfg.tracking)}; using {path}")
    return path
  fresh = run_export.export(plan())
  now = len(run_export.finished(fresh))
  before = len(run_export.finished(run_export.read(path))) if path.exists() else 0
  if now < before and not force:
    print(f"tables: MLflow holds {now} finished {cfg.scale.name} runs, {path} {before}; "
          f"keeping {path} (--force-export replaces it)")
    return path
  run_export.write(fresh, path)
  print(f"tables: exported {now} finished of {len(fresh)} planned runs to {path}")
  return path


def curves(cfg, out_root: str) -> None:
  """The learning curves of the scale (tables/curves.*) from results/curves-<scale>-*.csv."""
  from harness.tables import curves as curve_report
  written = curve_report.build(cfg.tracking.results_dir, cfg.scale.name,
                               output_dir(out_root, cfg.scale.name))
  print("curves: wrote " + ", ".join(str(p) for p in written))


def main(frameworks: Sequence[str], seeds: Sequence[int], overrides: Sequence[str], offline: bool,
         force: bool, out_root: str, flops_csv: str = FLOPS_CSV,
         plan: Optional[Callable[[], Iterable[status.Planned]]] = None) -> int:
  """`plan`: the planned runs of every experiment, if the caller has looked them up already."""
  cfg = config.load(overrides)
  path = run_export.csv_path(cfg.tracking.results_dir, cfg.scale.name)
  if not offline:
    plan = plan or (lambda: status.planned(registry.EXPERIMENTS, frameworks, seeds, overrides))
    path = refresh_export(cfg, plan, force)
  written = build.build(path, flops_csv, output_dir(out_root, cfg.scale.name), frameworks)
  print("tables: wrote " + ", ".join(str(p) for p in written))
  return 0
