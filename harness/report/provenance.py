"""Where a table's numbers come from: scale, runs, seeds, commits, dates, package versions and
machine, read from the run export itself (so that rebuilding from the same export gives the same
bytes); the models and the deviations from the paper's protocol, from the configs; and the
registered protocol the runs were judged under, with its commit in git."""
import pathlib
import subprocess
from typing import List, Sequence, Tuple

import pandas as pd

from harness.configs import conf_schemas, registry, tables_conf
from harness.store import export as run_export, registration


def model_scale(scale: str) -> str:
  """Which experiment scale's models a run scale trains (conf/scale/<scale>.yaml), e.g. smoke -> proxy."""
  path = conf_schemas.CONF_DIR / "scale" / f"{scale}.yaml"
  return conf_schemas.load(path, conf_schemas.Scale)["model_scale"]


def _distinct(series: pd.Series) -> str:
  values = sorted({str(v) for v in series.dropna() if str(v)})
  return ", ".join(values) if values else "unknown"


def _versions(runs: pd.DataFrame) -> str:
  parts = []
  for column in sorted(c for c in runs.columns if c.startswith(run_export.VERSION_PREFIX)):
    parts.append(f"{column[len(run_export.VERSION_PREFIX):]} {_distinct(runs[column]).replace(', ', '/')}")
  return "; ".join(parts) or "unknown"


PREDATES = ("these runs predate the registered protocol: the models and deviations of today's "
            "configs are not theirs, and are not shown")


def lines(runs: pd.DataFrame, experiments: Sequence[str], scale: str,
          stale: bool = False) -> List[Tuple[str, str]]:
  """(field, value) pairs for the runs of `experiments` at `scale`; `stale`: the runs are of an
  earlier protocol (predates), so the configs' models are not described as theirs."""
  mine = runs[runs.experiment.isin(experiments)]
  done = run_export.finished(mine)
  seeds = ", ".join(str(s) for s in sorted(set(mine.seed)))
  frameworks = ", ".join(sorted(set(mine.framework)))
  hours = done.wall_time_s.sum() / 3600
  out = [("Scale", scale),
         ("Runs", f"{len(done)} of {len(mine)} planned finished ({frameworks}; seeds {seeds}); "
                  f"{hours:.2f} h of run time summed")]
  if len(done):
    out += [("Dates", f"{done.start_time.min()} to {done.end_time.max()}"),
            ("Commits", _distinct(done.git_commit.str.slice(0, 12))),
            ("Packages", _versions(done)),
            ("Machine", _distinct(done.machine)),
            ("Devices", _distinct(done.device))]
  if stale:
    return out + [("Configs", PREDATES)]
  for experiment in experiments:
    label = f"Model ({experiment})" if len(experiments) > 1 else "Model"
    out.append((label, registry.describe_scale(experiment, model_scale(scale))))
  return out


def _commit_of(path: pathlib.Path) -> str:
  """'<commit> (<date>)' of the last commit that changed `path`, and whether it has changed
  since; 'not committed' outside git or before its first commit."""
  def git(*args):
    return subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True).stdout.strip()
  try:
    last = git("log", "-1", "--format=%H %cI", "--", path.name)
    changed = git("status", "--porcelain", "--", path.name)
  except OSError:
    return "not committed"
  if not last:
    return "not committed"
  commit, date = last.split(" ", 1)
  return f"commit {commit[:12]} ({date})" + ("; changed since" if changed else "")


def predates(runs: pd.DataFrame, results_dir, scale: str) -> bool:
  """Whether a protocol is registered and none of the finished runs is one it planned."""
  planned = set(registration.read(registration.path(results_dir, scale)).get("runs", {}))
  return bool(planned) and not run_export.finished(runs).config_hash.isin(planned).any()


def registered(runs: pd.DataFrame, results_dir, scale: str) -> str:
  """Which protocol the runs were judged under: its file, its commit, how many of the finished
  runs it registered (by config hash), and whether its verdict rule is conf/tables.yaml's."""
  target = registration.path(results_dir, scale)
  doc = registration.read(target)
  if not doc:
    return f"none registered (no {target.name})"
  done = run_export.finished(runs)
  known = done.config_hash.isin(set(doc.get("runs", {})))
  rule = ("its verdict rule is conf/tables.yaml's" if doc.get("verdicts") == registration.verdict_rule(tables_conf.load())
          else "**its verdict rule differs from conf/tables.yaml's**")
  return (f"`{target.name}`, {_commit_of(target.resolve())}; it registered {int(known.sum())} of the "
          f"{len(done)} finished runs; {rule}")


def caption(runs: pd.DataFrame, experiments: Sequence[str], scale: str, stale: bool = False) -> str:
  """One paragraph for a figure: the provenance fields without the model."""
  return "; ".join(f"{k}: {v}" for k, v in lines(runs, experiments, scale, stale) if not k.startswith("Model"))


def deviations(experiment: str, scale: str) -> List[str]:
  conf = tables_conf.experiment(experiment)["deviations"]
  return list(conf.get(model_scale(scale), []))


def markdown(runs: pd.DataFrame, experiments: Sequence[str], scale: str, stale: bool = False) -> str:
  text = [f"- **{k}:** {v}" for k, v in lines(runs, experiments, scale, stale)]
  tag = (lambda e: f"{e}: ") if len(experiments) > 1 else (lambda e: "")
  devs = [] if stale else [tag(e) + d for e in experiments for d in deviations(e, scale)]
  if devs:
    text.append("- **Deviations from the paper's protocol:**")
    text += [f"  - {d}" for d in devs]
  return "\n".join(text)


def latex_comment(runs: pd.DataFrame, experiments: Sequence[str], scale: str, stale: bool = False) -> str:
  text = [f"% {k}: {v}" for k, v in lines(runs, experiments, scale, stale)]
  text += [] if stale else [f"% Deviation: {d}" for e in experiments for d in deviations(e, scale)]
  return "\n".join(text)
