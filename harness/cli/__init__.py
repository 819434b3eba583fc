"""python -m harness <verb> [options] [Hydra overrides]: one parser, one table of verbs.

  run        one run:  python -m harness run experiment=table1 row=base framework=torch scale=proxy seed=0
  reproduce  every row x framework x seed (Hydra multirun), skipping finished runs;
             hydra/launcher=slurm sends the runs to SLURM (harness/conf/hydra/launcher/slurm.yaml)
  list       the experiment matrix (parameters, GFLOPs) and the state of its runs in MLflow
  curves     a row's metric against its training budget, over seeds (tables/curves.png)
  tables     export the runs to results/runs-<scale>.csv and build tables/ from it
  maps       Figure 2: the first TokenLearner module's maps, from the finished runs' weights
  protocol   register the protocol (tasks, seeds, verdict rule, planned runs) before a full run
  load       a finished run's logged weights in either framework, checked on its test set:
             python -m harness load experiment=table1 row=base framework=jax seed=0 --into torch

Overrides are Hydra's (key=value, group=option); see harness/conf/config.yaml.
"""
import argparse
import dataclasses
import sys
from typing import Callable, List, Optional, Sequence

from tokenlearner_spec import FRAMEWORKS, MAX_SEED, check_seed

from harness.cli import verbs
from harness.configs import compose, registry
from harness.machine import durable
from harness.store import tracking


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
  try:
    seeds = [int(v) for v in text.split(",")]
    for seed in seeds:
      check_seed(seed)
    return seeds
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers in [0, {MAX_SEED}]") from None


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


def _experiments(verb):
  verb.add_argument("--experiments", type=_choices(registry.EXPERIMENTS),
                    default=list(registry.EXPERIMENTS), help="comma-separated (default: all)")


def _frameworks_and_seeds(verb, defaults: str = "the scale's seed lists, per framework and row"):
  verb.add_argument("--frameworks", type=_choices(FRAMEWORKS), default=None,
                    help="comma-separated (default: jax,torch)")
  verb.add_argument("--seeds", type=_seeds, default=None, help=f"comma-separated (default: {defaults})")


def _out(verb):
  verb.add_argument("--out", default="tables",
                    help="where the tables go (default tables/; tables/<scale>/ off proxy)")


def _flops(verb):
  verb.add_argument("--flops", default=verbs.FLOPS_CSV,
                    help=f"the FLOP counts of `nox -s flops` (default {verbs.FLOPS_CSV})")


def _run_arguments(verb):
  """`run` takes Hydra overrides only."""


def _load_arguments(verb):
  verb.add_argument("--run-id", default=None, help="the MLflow run (default: the one the overrides compose)")
  verb.add_argument("--into", type=_choices(FRAMEWORKS), default=list(FRAMEWORKS),
                    help="comma-separated frameworks to load it in (default: jax,torch)")


def _reproduce_arguments(verb):
  _experiments(verb)
  _frameworks_and_seeds(verb)
  verb.add_argument("--jobs", type=_jobs, default=None,
                    help="runs in parallel (processes of the default joblib launcher; default 2)")
  _out(verb)
  _flops(verb)


def _list_arguments(verb):
  _experiments(verb)
  _frameworks_and_seeds(verb)
  verb.add_argument("--scales", type=_choices(("proxy", "paper")), default=["proxy", "paper"],
                    help="scales of the matrix's parameter and GFLOPs columns")
  verb.add_argument("--no-matrix", action="store_true", help="only the state of the runs")


def _protocol_arguments(verb):
  _frameworks_and_seeds(verb)


def _curves_arguments(verb):
  _experiments(verb)
  _frameworks_and_seeds(verb, "conf/curves.yaml's")
  verb.add_argument("--multiples", type=_multiples, default=None,
                    help="budgets as multiples of the recipe's train.steps (default: conf/curves.yaml's)")
  verb.add_argument("--jobs", type=_jobs, default=2, help="runs in parallel (processes)")
  _out(verb)


def _tables_arguments(verb):
  _frameworks_and_seeds(verb)
  _out(verb)
  _flops(verb)
  verb.add_argument("--offline", action="store_true",
                    help="build from results/runs-<scale>.csv only, without reading MLflow")
  verb.add_argument("--force-export", action="store_true",
                    help="replace the export even if MLflow holds fewer finished runs")


def _maps_arguments(verb):
  _out(verb)


def _reproduce_overrides(parser, args, overrides: List[str]) -> List[str]:
  """--jobs is the joblib launcher's; another launcher's config says how many runs go at once."""
  from harness.run import sweep
  chosen = sweep.launcher(overrides)
  if args.jobs is not None and chosen != sweep.JOBLIB:
    parser.error(f"--jobs is for the joblib launcher; with hydra/launcher={chosen}, its config "
                 "says how many runs go at once (e.g. hydra.launcher.array_parallelism)")
  if sweep.gpus_per_run(overrides):
    if chosen != sweep.JOBLIB or (args.jobs or 1) != 1:
      parser.error("runtime.gpus_per_run gives each run all the GPUs in turn, one run at a time: "
                   "it takes neither --jobs nor another launcher (which has its own gpus_per_node)")
    args.jobs = 1
  args.jobs = args.jobs or sweep.JOBS
  return overrides


def _curves_overrides(parser, args, overrides: List[str]) -> List[str]:
  """experiment= and row= name the curve, not one run's config."""
  named = [o for o in overrides if o.split("=", 1)[0] == "experiment"]
  if named:
    args.experiments = _choices(registry.EXPERIMENTS)(named[-1].split("=", 1)[1])
  overrides = [o for o in overrides if o.split("=", 1)[0] != "experiment"]
  rows = [o for o in overrides if o.split("=", 1)[0] == "row"]
  if rows and len(args.experiments) != 1:
    parser.error("row= needs one experiment (experiment=<name> or --experiments <name>)")
  return overrides


@dataclasses.dataclass(frozen=True)
class Verb:
  help: str
  arguments: Callable  # adds the verb's options to its subparser
  handler: Callable  # (args, overrides) -> exit status
  overrides: Optional[Callable] = None  # (parser, args, overrides) -> overrides, checked before composing


VERBS = {
    "run": Verb("train and evaluate one run", _run_arguments, verbs.run),
    "reproduce": Verb("run every row x framework x seed, then build the tables", _reproduce_arguments,
                      verbs.reproduce, _reproduce_overrides),
    "list": Verb("the matrix and the state of its runs", _list_arguments, verbs.list_verb),
    "curves": Verb("a row's metric against its training budget (conf/curves.yaml)", _curves_arguments,
                   verbs.curves, _curves_overrides),
    "tables": Verb("Tables 1-2, Figure 1 and the claims from the runs", _tables_arguments,
                   verbs.tables_verb),
    "maps": Verb("Figure 2 from the finished runs' weights (conf/maps.yaml)", _maps_arguments,
                 verbs.maps_verb),
    "protocol": Verb("register the protocol before a full run: results/protocol-<scale>.yaml",
                     _protocol_arguments, verbs.protocol_verb),
    "load": Verb("a finished run's weights in either framework, evaluated", _load_arguments, verbs.load),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = _Parser(prog="python -m harness", description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  subparsers = parser.add_subparsers(dest="verb", required=True)
  for name, verb in VERBS.items():
    verb.arguments(subparsers.add_parser(name, help=verb.help))
  args, overrides = parser.parse_known_args(argv)
  bad = [o for o in overrides if "=" not in o]
  if bad:
    parser.error(f"unrecognised arguments: {' '.join(bad)} (Hydra overrides look like key=value)")
  verb = VERBS[args.verb]
  if verb.overrides is not None:
    overrides = verb.overrides(parser, args, overrides)
  try:
    return verb.handler(args, overrides)
  except compose.ConfigError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  except (durable.StorageError, tracking.StoreUnavailable) as error:  # Said in one line where met.
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:  # A run under way was marked KILLED with the reason on the way out.
    print("interrupted: a run under way is marked KILLED and resumes from its last checkpoint on rerun",
          file=sys.stderr)
    return 130

