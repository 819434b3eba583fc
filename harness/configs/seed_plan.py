"""Which seeds `reproduce` runs of each row in each framework, from the scale's seed lists."""
from typing import Dict, List, Optional, Sequence

from tokenlearner_spec import FRAMEWORKS

from harness.configs import registry
from harness.configs.compose import ConfigError


def seeds_by_framework(scale, frameworks: Sequence[str], seeds: Optional[Sequence[int]] = None
                       ) -> Dict[str, Dict[str, Dict[str, List[int]]]]:
  """framework -> experiment -> row -> the seeds `reproduce` runs: `seeds` for every row if
  given; else the scale's `seeds` or the framework's own list (`framework_seeds`), only in the
  rows `framework_rows` lists for it, cut down to the seeds `experiment_seeds` lists for the
  row (`experiment/row`) or, failing that, its experiment. A row without seeds is not run."""
  if seeds is not None:
    return {fw: {e: {r.key: list(seeds) for r in registry.rows(e)} for e in registry.EXPERIMENTS}
            for fw in frameworks}
  every = [*registry.EXPERIMENTS, *(r.id for r in registry.rows())]
  own = _keyed(scale, "framework_seeds", FRAMEWORKS, "a framework")
  only_rows = _keyed(scale, "framework_rows", FRAMEWORKS, "a framework")
  limits = _keyed(scale, "experiment_seeds", every, "an experiment or experiment/row")
  for fw, listed in only_rows.items():
    unknown = sorted(set(listed) - set(every))
    if unknown:
      raise ConfigError(f"bad config: scale.framework_rows.{fw} names {', '.join(unknown)}, "
                        "not an experiment or experiment/row")
  runnable = set(scale.seeds).union(*own.values())
  for key, listed in limits.items():
    never = sorted(set(listed) - runnable)
    if never:  # A cut cannot add seeds: such a list would be silently shorter than it reads.
      raise ConfigError(f"bad config: scale.experiment_seeds.{key} lists seed(s) "
                        f"{', '.join(map(str, never))}, which no framework runs (scale.seeds, "
                        "scale.framework_seeds)")
  out = {}
  for fw in frameworks:
    its = list(own.get(fw, scale.seeds))
    out[fw] = {}
    for experiment in registry.EXPERIMENTS:
      out[fw][experiment] = per_row = {}
      for row in registry.rows(experiment):
        runs = fw not in only_rows or {experiment, row.id} & set(only_rows[fw])
        limit = limits.get(row.id, limits.get(experiment))
        per_row[row.key] = [s for s in its if runs and (limit is None or s in limit)]
  return out


def _keyed(scale, key: str, known: Sequence[str], what: str) -> dict:
  """scale.<key>, a mapping whose keys must be among `known`."""
  mapping = scale.get(key) or {}
  unknown = sorted(set(mapping) - set(known))
  if unknown:
    raise ConfigError(f"bad config: scale.{key} names {', '.join(unknown)}, not {what}")
  return mapping
