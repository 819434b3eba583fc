"""python -m harness <verb> [options] [Hydra overrides]

  run        one run:  python -m harness run experiment=table1 row=base framework=torch scale=proxy seed=0
  reproduce  every row x framework x seed (Hydra multirun), skipping finished runs;
             hydra/launcher=slurm sends the runs to SLURM (harness/conf/hydra/launcher/slurm.yaml)
  list       the experiment matrix (parameters, GFLOPs) and the state of its runs in MLflow
  curves     a row's metric against its training budget, over seeds (tables/curves.png)
  tables     export the runs to results/runs-<scale>.csv and build tables/ from it
  maps       Figure 2: the first TokenLearner module's maps, from the finished runs' weights
  load       a finished run's logged weights in either framework, checked on its test set:
             python -m harness load experiment=table1 row=base framework=jax seed=0 --into torch

Overrides are Hydra's (key=value, group=option); see harness/conf/config.yaml.
"""
import argparse
import sys

from tabulate import tabulate
from tokenlearner_spec import FRAMEWORKS

from harness import registry


class _Parser(argparse.ArgumentParser):
  """Reports a bad argument in one line, as every other bad input is reported; -h has the
  usage."""

  def error(self, message: str):
    self.exit(2, f"error: {message} (see {self.prog} -h)\n")


def _choices(allowed):
  def parse(text: str):
    values = [v for v in text.split(",") if v]
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
      raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated subset of {', '.join(allowed)}")
    return values
  return parse


def _seeds(text: str):
  from harness import config
  try:
    seeds = [int(v) for v in text.split(",")]
    for seed in seeds:
      config.check_seed(seed)
    return seeds
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers >= 0") from None


def _multiples(text: str):
  try:
    values = [float(v) for v in text.split(",")]
  except ValueError:
    values = []
  if not values or min(values) <= 0:
    raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated positive numbers")
  return values


def _jobs(text: str):
  try:
    jobs = int(text)
  except ValueError:
    jobs = 0
  if jobs < 1:
    raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
  return jobs


def _matrix(args) -> None:
  from harness import backends
  from harness.flops import analytic
  table = []
  for row in registry.rows():
    entry = [row.experiment, row.key, row.label]
    for scale in args.scales:
      fields = registry.model_fields(row.experiment, row.key, scale)
      counts = backends.param_counts(row.kind, fields)
      same = "" if counts["jax"] == counts["torch"] else f" (torch {counts['torch']:,})"
      gflops = sum(analytic.count(row.kind, backends.make_config(row.kind, fields)).values()) / 1e9
      entry += [f"{counts['jax']:,}{same}", f"{gflops:.4g}"]
    table.append(entry)
  headers = ["experiment", "row", "label"]
  for scale in args.scales:
    headers += [f"params @ {scale}", f"GFLOPs @ {scale}"]
  print(tabulate(table, headers=headers))


def _state(planned_runs) -> int:
  from harness import status
  table = status.runs_table(planned_runs)
  summary = status.summary(table).reset_index()
  print(tabulate(summary, headers="keys", showindex=False, floatfmt=".2f", missingval="–"))
  left = table[table.status != "FINISHED"]
  print(f"{len(table) - len(left)} of {len(table)} runs finished"
        + (f"; not finished: {', '.join(sorted(set(left.status)))}" if len(left) else ""))
  return len(left)


def _load(args, overrides) -> int:
  """Loads a finished run in each framework asked for and evaluates it on its test set: the
  metric it logged, again, is the check that the weights are the trained ones."""
  import types
  from harness import config, data as datasets, load, train
  try:
    run = load.find(overrides, args.run_id)
    print(f"{run.describe()}: artifacts at {run.mlflow_run.info.artifact_uri}")
    cfg, logged = run.config, run.mlflow_run.data.metrics
    for framework in args.into:
      model = load.model(run, framework)
      data = datasets.make(cfg.data, cfg.seed, model.fields["image_size"], model.fields.get("num_frames", 1))
      results = train.evaluate(types.SimpleNamespace(predict=model.logits), data, cfg.train.eval_batch_size)
      shown = ", ".join(f"{k} {v:.4f} (logged {logged.get(k, float('nan')):.4f})"
                        for k, v in results.items() if k in ("test_top1", "test_map"))
      print(f"  in {framework}: {shown}")
  except (config.ConfigError, load.NotFound, ValueError) as error:  # ValueError: weights that do not fit.
    print(f"error: {error}", file=sys.stderr)
    return 2
  return 0


def main(argv=None) -> int:
  parser = _Parser(prog="python -m harness", description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  verbs = parser.add_subparsers(dest="verb", required=True)
  verbs.add_parser("run", help="train and evaluate one run")
  load = verbs.add_parser("load", help="a finished run's weights in either framework, evaluated")
  load.add_argument("--run-id", default=None, help="the MLflow run (default: the one the overrides compose)")
  load.add_argument("--into", type=_choices(FRAMEWORKS), default=list(FRAMEWORKS),
                    help="comma-separated frameworks to load it in (default: jax,torch)")
  for name, text in (("reproduce", "run every row x framework x seed, then build the tables"),
                     ("list", "the matrix and the state of its runs"),
                     ("tables", "Tables 1-2, Figure 1 and the claims from the runs"),
                     ("maps", "Figure 2 from the finished runs' weights (conf/maps.yaml)"),
                     ("curves", "a row's metric against its training budget (conf/curves.yaml)")):
    verb = verbs.add_parser(name, help=text)
    if name not in ("tables", "maps"):  # These always cover what their configs name.
      verb.add_argument("--experiments", type=_choices(registry.EXPERIMENTS),
                        default=list(registry.EXPERIMENTS), help="comma-separated (default: all)")
    if name != "maps":
      verb.add_argument("--frameworks", type=_choices(FRAMEWORKS), default=None,
                        help="comma-separated (default: jax,torch; for curves, conf/curves.yaml's)")
      verb.add_argument("--seeds", type=_seeds, default=None,
                        help="comma-separated (default: the scale's, e.g. 0,1,2 at proxy, 0 at smoke;"
                             " for curves, conf/curves.yaml's)")
    if name == "curves":
      verb.add_argument("--multiples", type=_multiples, default=None,
                        help="budgets as multiples of the recipe's train.steps (default: "
                             "conf/curves.yaml's)")
    if name == "reproduce":  # Another launcher's config says how many runs go at once.
      verb.add_argument("--jobs", type=_jobs, default=None,
                        help="runs in parallel (processes of the default joblib launcher; default 2)")
    if name == "curves":
      verb.add_argument("--jobs", type=_jobs, default=2, help="runs in parallel (processes)")
    if name in ("reproduce", "tables", "curves", "maps"):
      verb.add_argument("--out", default="tables",
                        help="where the tables go (default tables/; tables/<scale>/ off proxy)")
    if name in ("reproduce", "tables"):
      verb.add_argument("--flops", default="results/flops.csv",
                        help="the FLOP counts of `nox -s flops` (default results/flops.csv)")
    if name == "tables":
      verb.add_argument("--offline", action="store_true",
                        help="build from results/runs-<scale>.csv only, without reading MLflow")
      verb.add_argument("--force-export", action="store_true",
                        help="replace the export even if MLflow holds fewer finished runs")
    if name == "list":
      verb.add_argument("--scales", type=_choices(("proxy", "paper")), default=["proxy", "paper"],
                        help="scales of the matrix's parameter and GFLOPs columns")
      verb.add_argument("--no-matrix", action="store_true", help="only the state of the runs")
  args, overrides = parser.parse_known_args(argv)
  bad = [o for o in overrides if "=" not in o]
  if bad:
    parser.error(f"unrecognised arguments: {' '.join(bad)} (Hydra overrides look like key=value)")

  if args.verb == "reproduce":
    from harness import sweep
    chosen = sweep.launcher(overrides)
    if args.jobs is not None and chosen != sweep.JOBLIB:
      parser.error(f"--jobs is for the joblib launcher; with hydra/launcher={chosen}, its config "
                   "says how many runs go at once (e.g. hydra.launcher.array_parallelism)")
    args.jobs = args.jobs or sweep.JOBS

  from harness import config
  if args.verb == "curves":  # experiment= and row= name the curve, not one run's config.
    named = [o for o in overrides if o.split("=", 1)[0] == "experiment"]
    if named:
      args.experiments = _choices(registry.EXPERIMENTS)(named[-1].split("=", 1)[1])
    overrides = [o for o in overrides if o.split("=", 1)[0] != "experiment"]
    rows = [o for o in overrides if o.split("=", 1)[0] == "row"]
    if rows and len(args.experiments) != 1:
      parser.error("row= needs one experiment (experiment=<name> or --experiments <name>)")
  if args.verb == "load":
    return _load(args, overrides)
  try:
    cfg = config.compose_config(overrides)
    if args.verb in ("run", "reproduce"):
      from harness import preflight
      preflight.check(cfg)
    if args.verb == "curves":
      from harness import curves, preflight
      from harness.tables import cli as tables
      preflight.check(cfg)
      unfinished = curves.run(args.experiments, overrides, args.jobs, args.frameworks, args.seeds,
                              args.multiples)
      tables.curves(cfg, args.out)
      return 1 if unfinished else 0
    if args.verb == "maps":
      from harness import maps
      return maps.main(overrides, args.out)
    args.frameworks = getattr(args, "frameworks", None) or list(FRAMEWORKS)
    if args.verb != "run":
      args.seeds = config.seeds_by_framework(config.validate(cfg, data_files=False).scale,
                                             args.frameworks, args.seeds)
    if args.verb == "run":
      from harness import train
      train.configure_runtime(cfg.runtime, cfg.framework)  # Before JAX's backend starts.
      try:
        outcome = train.run(config.validate(cfg))
      except train.RUN_FAILURES as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
      return 0 if outcome.status in ("finished", "skipped") else 1
    if args.verb == "reproduce":
      from harness import sweep
      sweep.reproduce(args.experiments, args.seeds, args.jobs, overrides)
      from harness import status
      from harness.tables import cli as tables
      plan = list(status.planned(registry.EXPERIMENTS, args.frameworks, args.seeds, overrides))
      unfinished = _state([p for p in plan if p.row.experiment in args.experiments])
      tables.main(args.frameworks, args.seeds, overrides, offline=False, force=False,
                  out_root=args.out, flops_csv=args.flops, plan=lambda: plan)
      from harness import maps
      maps.main(overrides, args.out)  # Says which runs it lacks, if any; the state above decides.
      return 1 if unfinished else 0
    if args.verb == "tables":
      from harness.tables import cli as tables
      try:
        return tables.main(args.frameworks, args.seeds, overrides, args.offline, args.force_export,
                           args.out, args.flops)
      except (FileNotFoundError, ValueError) as error:  # A missing or malformed export.
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.no_matrix:
      _matrix(args)
      print()
    from harness import status
    _state(status.planned(args.experiments, args.frameworks, args.seeds, overrides))
    return 0
  except config.ConfigError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
