"""Typed schemas of the harness's YAML files, and the one function that reads them.

Every file under harness/conf that is not composed by Hydra into a run (the
experiments, the scales, the published numbers, the tables, the FLOP report) is
read by `load(path, schema)`: the YAML is merged into its dataclass, so a
misspelt key or a value of the wrong type fails on load with one line naming the
file and the key, instead of surfacing as a KeyError deep in a report. The
experiment and scale schemas are also the run schema's (harness/configs/schema.py).
"""
import copy
import dataclasses
import enum
import functools
import pathlib
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tokenlearner_spec import FRAMEWORKS

CONF_DIR = pathlib.Path(__file__).parents[1] / "conf"


class SchemaError(ValueError):
  """A harness YAML file that does not fit its schema; the message is one line."""


@dataclasses.dataclass
class Row:
  """A row of a paper artifact: fields shared by all scales (`model`), then each scale's."""
  label: str = MISSING
  series: str = ""  # Figure 1: which curve the row belongs to.
  model: Dict[str, Any] = dataclasses.field(default_factory=dict)
  proxy: Dict[str, Any] = dataclasses.field(default_factory=dict)
  paper: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Experiment:
  """A paper artifact (conf/experiment/*.yaml): its base model per scale and its rows."""
  name: str = MISSING
  title: str = MISSING
  model: str = MISSING  # 'vit' or 'video'
  scales: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
  rows: Dict[str, Row] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Scale:
  """A run scale (conf/scale/*.yaml)."""
  name: str = MISSING
  model_scale: str = MISSING  # Which experiment scale's model fields this scale trains.
  seeds: List[int] = dataclasses.field(default_factory=lambda: [0])  # what `reproduce` runs
  # A framework that runs other seeds than `seeds` (e.g. fewer, where it only checks agreement).
  framework_seeds: Dict[str, List[int]] = dataclasses.field(default_factory=dict)
  # A framework that runs only these rows (`experiment/row`, or an experiment for all its rows).
  framework_rows: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  # An experiment, or one row (`experiment/row`, which wins), that runs only these of each
  # framework's seeds (where more seeds would not change what its comparisons can show).
  experiment_seeds: Dict[str, List[int]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class PublishedValue:
  value: float = MISSING
  source: str = MISSING  # A key of PublishedFile.sources.


@dataclasses.dataclass
class PublishedFile:
  """conf/published.yaml: the paper's numbers, the only figures typed in by hand."""
  sources: Dict[str, str] = MISSING
  rows: Dict[str, Dict[str, Dict[str, PublishedValue]]] = MISSING  # experiment -> row -> metric
  models: Dict[str, Dict[str, PublishedValue]] = MISSING  # model -> metric


Framework = enum.Enum("Framework", {f: f for f in FRAMEWORKS})  # The frameworks with a twin.


class Test(enum.Enum):
  superior = "superior"
  noninferior = "noninferior"


@dataclasses.dataclass
class Comparison:
  row: str = MISSING
  other: str = MISSING
  test: Test = MISSING
  margin: Optional[float] = None  # noninferior: how far below `other` (log-odds) still matches
  # noninferior: the margin is instead the paper's log-odds gap between these two rows
  margin_as: Optional[List[str]] = None
  fewer_flops: bool = False  # also requires the row to cost fewer GFLOPs than `other`


@dataclasses.dataclass
class Claim:
  id: str = MISSING
  experiment: str = MISSING
  text: str = MISSING
  comparisons: List[Comparison] = MISSING


@dataclasses.dataclass
class ArtifactReport:
  metric_name: str = MISSING
  published_metric: str = MISSING
  published_dataset: str = MISSING
  deviations: Dict[str, List[str]] = MISSING  # scale -> how it departs from the paper
  wiring_note: str = ""


@dataclasses.dataclass
class TablesFile:
  """conf/tables.yaml: what each artifact reports, its deviations, the claims."""
  confidence: float = MISSING  # of every interval; for the claims, family-wise
  judge_frameworks: List[Framework] = dataclasses.field(
      default_factory=lambda: list(Framework))  # whose runs decide the claims
  power: float = MISSING  # at the paper's effect, of the seeds an inconclusive comparison would need
  experiments: Dict[str, ArtifactReport] = MISSING
  claims: List[Claim] = MISSING


@dataclasses.dataclass
class CurvesFile:
  """conf/curves.yaml: the learning-curve study a recipe's training length is chosen from."""
  multiples: List[float] = MISSING  # budgets, in units of the recipe's train.steps
  frameworks: List[str] = MISSING
  seeds: List[int] = MISSING
  plateau_error_cut: float = MISSING  # on a plateau: twice the budget cuts the error by less than this share


@dataclasses.dataclass
class MapsRow:
  experiment: str = MISSING
  row: str = MISSING  # a TokenLearner row
  pooled: str = MISSING  # the row of the same experiment that pools as many tokens with fixed regions


@dataclasses.dataclass
class MapsFile:
  """conf/maps.yaml: Figure 2, where the first TokenLearner module looks."""
  rows: List[MapsRow] = MISSING
  framework: Framework = MISSING
  measured: int = MISSING  # test examples per run the mass shares average over
  drawn: Dict[str, int] = MISSING  # experiment -> test images or clips drawn
  tokens_drawn: int = MISSING
  silent_below: float = MISSING  # a map whose largest weight is below this is silent


@dataclasses.dataclass
class FlopsReference:
  label: str = MISSING
  row: str = MISSING  # experiment/row
  override: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FlopsInterpretation:
  label: str = MISSING
  override: Dict[str, Any] = MISSING


@dataclasses.dataclass
class FlopsModulePart:
  label: str = MISSING
  row: str = MISSING
  parts: List[str] = MISSING
  published: str = MISSING  # a model of published.yaml


@dataclasses.dataclass
class FlopsFile:
  """conf/flops.yaml: what the FLOP report counts besides every registered row."""
  match_tolerance: float = MISSING
  reference: Dict[str, FlopsReference] = MISSING
  interpretations: Dict[str, Dict[str, FlopsInterpretation]] = MISSING  # row -> reading
  module_parts: Dict[str, FlopsModulePart] = MISSING


@functools.lru_cache(maxsize=None)
def curves() -> dict:
  """conf/curves.yaml: the budget study's defaults and the plateau test."""
  return load(CONF_DIR / "curves.yaml", CurvesFile)


def _load(path: pathlib.Path, schema: type) -> dict:
  try:
    merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(path))
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
      raise SchemaError(f"{path.name}: no value for {', '.join(missing)}")
    return OmegaConf.to_container(merged, resolve=True, enum_to_str=True)
  except (OmegaConfBaseException, OSError) as error:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise SchemaError(f"{path.name}: {message}") from None


def load(path, schema: type) -> dict:
  """The YAML file at `path` checked against `schema`, as plain containers: checked once per
  content of the file (planning a sweep reads each experiment's file hundreds of times), and a
  fresh copy each time, which the caller may change."""
  path = pathlib.Path(path)
  try:
    content = path.read_bytes()
  except OSError:
    return _load(path, schema)  # Says what is wrong with the path, in its words.
  return copy.deepcopy(_checked(path, content, schema))


@functools.lru_cache(maxsize=64)
def _checked(path: pathlib.Path, content: bytes, schema: type) -> dict:
  return _load(path, schema)
