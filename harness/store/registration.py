"""The protocol a full run is judged under, registered before the run: results/protocol-<scale>.yaml.

`python -m harness protocol` writes what the configs say now: each experiment's task and
budget (the resolved data, optimizer and training settings of its runs), the seeds of every
row in every framework, the verdict rule (conf/tables.yaml) with the paper's gap each
comparison is judged against, and the config hash of every planned run. Committed before the
full run, it is the record that the rules were fixed before any comparison was seen: the
tables name its commit and count the judged runs whose config hashes it registered.
"""
import pathlib
from typing import Dict, Iterable, List

import yaml
from omegaconf import OmegaConf

from harness.configs import compose, registry, tables_conf
from harness.machine import durable
from harness.store import run_status

HEADER = ("# Registered before the full run by `python -m harness protocol`; do not edit by hand.\n"
          "# The tables name this file's commit and check their runs against `runs`.\n")
TASK_KEYS = ("data", "optim", "train")


def path(results_dir, scale: str) -> pathlib.Path:
  return pathlib.Path(results_dir) / f"protocol-{scale}.yaml"


def _task(experiment: str, overrides) -> Dict:
  """What an experiment's runs train on and how long: the resolved data, optimizer and
  training settings, the same for all its rows."""
  cfg = compose.compose_config([*overrides, f"experiment={experiment}", f"row={registry.rows(experiment)[0].key}"])
  tree = OmegaConf.to_container(cfg, resolve=True)
  return {key: tree[key] for key in TASK_KEYS}


def verdict_rule(settings: dict) -> Dict:
  comparisons = []
  for claim in settings["claims"]:
    metric = settings["experiments"][claim["experiment"]]["published_metric"]
    for test in claim["comparisons"]:
      entry = dict(claim=claim["id"], row=test["row"], other=test["other"], test=test["test"],
                   paper_gap=round(tables_conf.paper_gap(claim["experiment"], test["row"], test["other"], metric), 6))
      if test["test"] == "noninferior":
        entry["margin"] = round(float(test["margin"]), 6)
      if test.get("fewer_flops"):
        entry["fewer_flops"] = True
      comparisons.append(entry)
  return dict(scale="log-odds", confidence=settings["confidence"], power=settings["power"],
              judge_frameworks=list(settings["judge_frameworks"]), correction="holm",
              interval="paired bootstrap over seeds and test items; t with Welch-Satterthwaite "
                       "degrees of freedom; Bonferroni-simultaneous", comparisons=comparisons)


def document(planned: Iterable[run_status.Planned], experiments: List[str], scale: str, overrides) -> Dict:
  planned = list(planned)
  seeds: Dict = {}
  for p in planned:
    seeds.setdefault(p.row.experiment, {}).setdefault(p.row.key, {}).setdefault(p.framework, []).append(p.seed)
  return dict(scale=scale,
              experiments={e: dict(task=_task(e, overrides), seeds=seeds.get(e, {})) for e in experiments},
              verdicts=verdict_rule(tables_conf.load()),
              runs={p.config_hash: f"{p.row.id} {p.framework} seed {p.seed}" for p in planned})


def write(doc: Dict, target: pathlib.Path) -> None:
  durable.write_text(target, HEADER + yaml.safe_dump(doc, sort_keys=False, width=100, default_flow_style=None),
                     "the protocol")


def read(target: pathlib.Path) -> Dict:
  """The registered protocol; {} where there is none."""
  if not target.exists():
    return {}
  return yaml.safe_load(target.read_text()) or {}
