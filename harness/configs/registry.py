"""The experiment matrix: every row of Tables 1-2 and Figure 1, read from conf/experiment/*.yaml.

Each experiment YAML is the one place that defines its rows: a base model per
scale, then per row the fields shared by all scales (`model`) and the fields of
one scale (`paper`, `proxy`, ...). The registry merges them into the plain
field dict that both implementations' configs accept; it imports neither.
"""
import dataclasses
from typing import Dict, List, Tuple

from harness.configs import conf_schemas

EXPERIMENTS = ("table1", "figure1", "table2")


@dataclasses.dataclass(frozen=True)
class Row:
  experiment: str
  key: str
  label: str
  kind: str  # 'vit' or 'video'
  series: str = ""

  @property
  def id(self) -> str:
    return f"{self.experiment}/{self.key}"


def _load(experiment: str) -> dict:
  if experiment not in EXPERIMENTS:
    raise KeyError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
  path = conf_schemas.CONF_DIR / "experiment" / f"{experiment}.yaml"
  return conf_schemas.load(path, conf_schemas.Experiment)


def definition(experiment: str) -> dict:
  """conf/experiment/<experiment>.yaml as a run config's `experiment` holds it."""
  return _load(experiment)


def scales(experiment: str) -> Tuple[str, ...]:
  return tuple(_load(experiment)["scales"])


def title(experiment: str) -> str:
  return _load(experiment)["title"]


def describe_scale(experiment: str, scale: str) -> str:
  """The base fields of a scale in words, e.g. 'variant=L/16, image_size=512, num_classes=1000'."""
  return ", ".join(f"{k}={v}" for k, v in _load(experiment)["scales"][scale].items())


def rows(experiment: str | None = None) -> List[Row]:
  """The registered rows of one experiment, or of all three in paper order."""
  names = EXPERIMENTS if experiment is None else (experiment,)
  out = []
  for name in names:
    spec = _load(name)
    for key, row in spec["rows"].items():
      out.append(Row(name, key, row["label"], spec["model"], row.get("series", "")))
  return out


def get_row(experiment: str, key: str) -> Row:
  for row in rows(experiment):
    if row.key == key:
      return row
  known = ", ".join(r.key for r in rows(experiment))
  raise KeyError(f"unknown row {key!r} of {experiment}; known: {known}")


def model_fields(experiment: str, key: str, scale: str) -> Dict:
  """The merged config fields of a row at a scale (a 'variant' such as 'L/16' left unexpanded)."""
  get_row(experiment, key)
  return merge_fields(_load(experiment), key, scale)


def merge_fields(spec: dict, key: str, scale: str) -> Dict:
  """A row's model fields from an experiment spec (the YAML, or a composed run config's
  `experiment`): the scale's base fields, then the row's shared ones, then its per-scale ones."""
  if scale not in spec["scales"]:
    raise KeyError(f"unknown scale {scale!r} for {spec['name']}; known: {', '.join(spec['scales'])}")
  row = spec["rows"][key]
  fields = {**spec["scales"][scale], **(row.get("model") or {}), **(row.get(scale) or {})}
  return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}


def json_fields(fields: Dict) -> Dict:
  """Model fields as JSON values (tuples as lists), for hashing and logging them."""
  return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
