"""The paper's published numbers, read from conf/published.yaml, each with its source."""
import dataclasses
from typing import Optional


from harness.configs import conf_schemas

PATH = conf_schemas.CONF_DIR / "published.yaml"


@dataclasses.dataclass(frozen=True)
class Published:
  value: float
  source: str  # Where in the paper, in words.


def _load() -> dict:
  return conf_schemas.load(PATH, conf_schemas.PublishedFile)


def _entry(spec: Optional[dict]) -> Optional[Published]:
  if spec is None:
    return None
  sources = _load()["sources"]
  if spec["source"] not in sources:
    raise KeyError(f"{PATH.name}: unknown source {spec['source']!r}; known: {', '.join(sources)}")
  return Published(float(spec["value"]), sources[spec["source"]])


def row(experiment: str, key: str, metric: str) -> Optional[Published]:
  """A registered row's published `metric` ('top1', 'map', 'gflops', ...), or None if unpublished."""
  return _entry(_load()["rows"].get(experiment, {}).get(key, {}).get(metric))


def model(name: str, metric: str) -> Optional[Published]:
  """A published figure of a model that is not a registered row (e.g. 'vit_b16_384')."""
  return _entry(_load()["models"].get(name, {}).get(metric))


def row_keys():
  """(experiment, key) of every row with a published number, to check against the registry."""
  return [(exp, key) for exp, rows in _load()["rows"].items() for key in rows]
