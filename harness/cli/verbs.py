"""What each verb does, given its parsed arguments and the Hydra overrides; each returns the
process's exit status. Training verbs check their environment first (preflight); reporting
verbs (`tables`, `list`) read results and configs only, never a dataset or a checkpoint."""
import pathlib
import sys
import types
from typing import Sequence

from tabulate import tabulate
from tokenlearner_spec import FRAMEWORKS

from harness.configs import compose, registry, run_spec, seed_plan

FLOPS_CSV = "results/flops.csv"  # Written by `nox -s flops`; committed.


def output_dir(root, scale: str) -> pathlib.Path:
  """tables/ for the proxy scale (the committed artifacts), tables/<scale>/ for the others."""
  return pathlib.Path(root) if scale == "proxy" else pathlib.Path(root) / scale


def _seeds(args, cfg):
  """framework -> experiment -> row -> seeds, from --frameworks/--seeds or the scale's lists;
  validates `cfg` on the way, without file checks."""
  args.frameworks = args.frameworks or list(FRAMEWORKS)
  return seed_plan.seeds_by_framework(compose.validate(cfg, data_files=False).scale, args.frameworks,
                                      args.seeds)


def _state(planned_runs) -> int:
  """Prints the runs' state per row and framework; returns how many are not finished."""
  from harness.store import run_status
  table = run_status.runs_table(planned_runs)
  summary = run_status.summary(table).reset_index()
  print(tabulate(summary, headers="keys", showindex=False, floatfmt=".2f", missingval="–"))
  left = table[table.status != "FINISHED"]
  print(f"{len(table) - len(left)} of {len(table)} runs finished"
        + (f"; not finished: {', '.join(sorted(set(left.status)))}" if len(left) else ""))
  return len(left)


def tables(cfg, frameworks: Sequence[str], seeds, overrides: Sequence[str], offline: bool, force: bool,
           out_root: str, flops_csv: str = FLOPS_CSV, plan=None) -> int:
  """Refreshes the run export from MLflow (unless offline), then builds tables/ from it. `cfg`:
  the overrides' config, validated without file checks (_seeds does); `plan`: the planned runs
  of every experiment, if the caller has looked them up already."""
  from harness.report import build
  from harness.store import export, run_status
  path = export.csv_path(cfg.tracking.results_dir, cfg.scale.name)
  if not offline:
    plan = plan or (lambda: run_status.planned(registry.EXPERIMENTS, frameworks, seeds, overrides))
    path = export.refresh(cfg, plan, force)
  written = build.build(path, flops_csv, output_dir(out_root, cfg.scale.name), frameworks)
  print("tables: wrote " + ", ".join(str(p) for p in written))
  return 0


def maps(overrides: Sequence[str], out_root: str) -> int:
  """Figure 2 and its table from the finished runs the overrides plan; 1 if any is missing."""
  from harness.maps import measure
  from harness.report import figure2
  try:
    conf = measure.settings()
  except ValueError as error:
    print(f"maps: {error}")
    return 2
  status, measured = measure.from_finished_runs(overrides, conf)
  if measured is None:
    return status
  out = output_dir(out_root, measured.scale)
  out.mkdir(parents=True, exist_ok=True)
  written = figure2.build(measured.frame, measured.panels, conf["framework"], conf["measured"],
                          measured.runs, measured.experiments, measured.scale, out, conf["silent_below"])
  print(f"maps: {len(measured.runs)} runs measured; wrote {measured.csv}, "
        f"{', '.join(map(str, written))}")
  return 0


def run(args, overrides: Sequence[str]) -> int:
  from harness.run import preflight, train
  cfg = compose.compose_config(overrides)
  if cfg.runtime.gpus_per_run:
    raise compose.ConfigError("bad config: runtime.gpus_per_run is reproduce's; start one run on n "
                              "GPUs with torchrun --nproc-per-node n (PyTorch) or as it is (JAX)")
  preflight.check(cfg)
  train.configure_runtime(cfg.runtime, cfg.framework)  # Before JAX's backend starts.
  try:
    outcome = train.run(run_spec.of(compose.validate(cfg)))
  except train.RUN_FAILURES as error:
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return 1
  return 0 if outcome.status in ("finished", "skipped") else 1


def _warn_unregistered(cfg, planned) -> None:
  """One line when runs about to train are not in the registered protocol (results/protocol-<scale>.yaml)."""
  from harness.store import registration
  target = registration.path(cfg.tracking.results_dir, cfg.scale.name)
  registered = registration.read(target).get("runs", {})
  missing = [p for p in planned if p.config_hash not in registered]
  if cfg.scale.name == "proxy" and missing:
    print(f"warning: {len(missing)} of {len(planned)} planned runs are not in {target} (the tables "
          "will say so): `python -m harness protocol` registers them, to commit before the full run",
          file=sys.stderr, flush=True)


def reproduce(args, overrides: Sequence[str]) -> int:
  from harness.run import preflight, sweep
  from harness.store import run_status, tracking
  cfg = compose.compose_config(overrides)
  preflight.check(cfg)
  for experiment in args.experiments:  # Before anything trains: each run would refuse alone.
    compose.require_pretrained(compose.compose_config([*overrides, f"experiment={experiment}"]))
  seeds = _seeds(args, cfg)
  before = list(run_status.planned(args.experiments, args.frameworks, seeds, overrides))
  _warn_unregistered(cfg, before)
  finished = {(p.row.experiment, p.row.key, p.framework, p.seed) for p in before
              if p.status == tracking.FINISHED}
  try:
    sweep.reproduce(args.experiments, seeds, args.jobs, overrides, finished)
  except sweep.SweepStopped as error:  # No tables: the store or the disk would fail them too.
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return 1
  plan = list(run_status.planned(registry.EXPERIMENTS, args.frameworks, seeds, overrides))
  unfinished = _state([p for p in plan if p.row.experiment in args.experiments])
  tables(cfg, args.frameworks, seeds, overrides, offline=False, force=False, out_root=args.out,
         flops_csv=args.flops, plan=lambda: plan)
  maps(overrides, args.out)  # Says which runs it lacks, if any; the state above decides.
  return 1 if unfinished else 0


def curves(args, overrides: Sequence[str]) -> int:
  from harness.report import learning_curves
  from harness.run import budget_study, preflight
  cfg = compose.compose_config(overrides)
  preflight.check(cfg)
  unfinished = budget_study.run(args.experiments, overrides, args.jobs, args.frameworks, args.seeds,
                                args.multiples)
  written = learning_curves.build(cfg.tracking.results_dir, cfg.scale.name,
                                  output_dir(args.out, cfg.scale.name))
  print("curves: wrote " + ", ".join(str(p) for p in written))
  return 1 if unfinished else 0


def tables_verb(args, overrides: Sequence[str]) -> int:
  cfg = compose.compose_config(overrides)
  seeds = _seeds(args, cfg)
  try:
    return tables(cfg, args.frameworks, seeds, overrides, args.offline, args.force_export, args.out,
                  args.flops)
  except (FileNotFoundError, ValueError) as error:  # A missing or malformed export.
    print(f"error: {error}", file=sys.stderr)
    return 2


def maps_verb(args, overrides: Sequence[str]) -> int:
  return maps(overrides, args.out)


def _matrix(scales: Sequence[str]) -> None:
  """Each row's parameters and GFLOPs at each scale."""
  from harness.flops import analytic
  from harness.twins import backends
  table = []
  for row in registry.rows():
    entry = [row.experiment, row.key, row.label]
    for scale in scales:
      fields = registry.model_fields(row.experiment, row.key, scale)
      counts = backends.param_counts(row.kind, fields)
      same = "" if counts["jax"] == counts["torch"] else f" (torch {counts['torch']:,})"
      gflops = sum(analytic.count(row.kind, backends.make_config(row.kind, fields)).values()) / 1e9
      entry += [f"{counts['jax']:,}{same}", f"{gflops:.4g}"]
    table.append(entry)
  headers = ["experiment", "row", "label"]
  for scale in scales:
    headers += [f"params @ {scale}", f"GFLOPs @ {scale}"]
  print(tabulate(table, headers=headers))


def list_verb(args, overrides: Sequence[str]) -> int:
  from harness.store import run_status
  seeds = _seeds(args, compose.compose_config(overrides))
  if not args.no_matrix:
    _matrix(args.scales)
    print()
  _state(run_status.planned(args.experiments, args.frameworks, seeds, overrides))
  return 0


def protocol_verb(args, overrides: Sequence[str]) -> int:
  """Registers the protocol: results/protocol-<scale>.yaml from the configs as they stand."""
  from harness.store import registration, run_status
  cfg = compose.compose_config(overrides)
  seeds = _seeds(args, cfg)
  experiments = list(registry.EXPERIMENTS)
  planned = run_status.plan(experiments, args.frameworks, seeds, overrides)
  target = registration.path(cfg.tracking.results_dir, cfg.scale.name)
  registration.write(registration.document(planned, experiments, cfg.scale.name, overrides), target)
  print(f"protocol: {len(planned)} planned runs, their tasks, seeds and verdict rule in {target}; "
        "commit it before the full run")
  return 0


def load(args, overrides: Sequence[str]) -> int:
  """Loads a finished run in each framework asked for and evaluates it on its test set: the
  metric it logged, again, is the check that the weights are the trained ones."""
  from harness import data as datasets
  from harness.run import train
  from harness.store import finished_runs
  try:
    found = finished_runs.find(overrides, args.run_id)
    print(f"{found.describe()}: artifacts at {found.mlflow_run.info.artifact_uri}")
    cfg, logged = found.config, found.mlflow_run.data.metrics
    for framework in args.into:
      model = finished_runs.model(found, framework)
      data = datasets.make(cfg.data, cfg.seed, model.fields["image_size"], model.fields.get("num_frames", 1))
      results, _ = train.evaluate(types.SimpleNamespace(predict=model.logits), data, cfg.train.eval_batch_size)
      shown = ", ".join(f"{k} {v:.4f} (logged {logged.get(k, float('nan')):.4f})"
                        for k, v in results.items() if k in ("test_top1", "test_map"))
      print(f"  in {framework}: {shown}")
  except (finished_runs.NotFound, ValueError) as error:  # ValueError: weights that do not fit.
    print(f"error: {error}", file=sys.stderr)
    return 2
  return 0
