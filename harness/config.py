"""Typed schema of a run's Hydra config, and loading it with one-line errors.

The YAML under harness/conf fills this schema: `experiment` (a paper artifact
and its rows), `scale` (smoke, proxy, paper), `recipe` (picked as
<experiment>_<scale>: the data and optimizer groups and the training length),
`framework`, `tracking`, and `runtime` (how a run executes, outside its hash).
Each data source has its own schema, so a key the source does not read is
refused. A value of the wrong type or a key the schema does not have fails when
the config is composed; `validate()` then checks what types cannot (the row
exists, the model config is valid, the data has the model's classes) and turns
every failure into one line that names the problem.
"""
import dataclasses
import hashlib
import json
import pathlib
from typing import Any, Dict, List, Optional, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, DictConfig, OmegaConf
from tokenlearner_spec import FRAMEWORKS, PRECISIONS, OptimizerConfig

from harness import schemas

CONF_DIR = schemas.CONF_DIR
INITS = ("shared", "native")  # train.init: see harness/starts.py
DATA_CHECKS = "data_checks"  # <results_dir>/data_checks/: stamps of datasets whose images all open


class ConfigError(ValueError):
  """A bad run config; its message is one line naming the problem."""


@dataclasses.dataclass
class DigitsData:
  """Cluttered handwritten digits (harness/data/digits.py); the canvas is the model's image_size."""
  source: str = "digits"
  digit_size: int = 16  # side a source digit is scaled to
  clutter: int = 6  # clutter fragments per canvas
  clutter_size: int = 5  # side of a clutter fragment
  test_size: int = 1000


@dataclasses.dataclass
class MovingDigitsData:
  """Clips of moving digits (harness/data/moving_digits.py); frames and size are the model's."""
  source: str = "moving_digits"
  digit_size: int = 12
  max_digits: int = 3  # 1..max_digits digits per clip
  test_size: int = 512


@dataclasses.dataclass
class ImageNetData:
  source: str = "imagenet"
  root: str = MISSING  # <root>/train/<class>/*, <root>/val/<class>/*


@dataclasses.dataclass
class CharadesData:
  source: str = "charades"
  root: str = MISSING  # annotations and frames extracted at 24 fps
  fps_stride: int = 4  # keep every n-th extracted frame (24 fps / 4 = 6 fps)


# The options of the `data` group: conf/data/<source>.yaml extends <source>_schema, so a key
# that its source does not read is refused when the config is composed.
DATA_SOURCES = {"digits": DigitsData, "moving_digits": MovingDigitsData, "imagenet": ImageNetData,
                "charades": CharadesData}


# The `optim` group: tokenlearner_spec.OptimizerConfig's fields and defaults, but total_steps,
# which the harness sets to train.steps. Derived, so that the fields are written down once.
OptimSpec = dataclasses.make_dataclass("OptimSpec", [
    (f.name, f.type, dataclasses.field(default=f.default))
    for f in dataclasses.fields(OptimizerConfig) if f.name != "total_steps"])


@dataclasses.dataclass
class TrainSpec:
  steps: int = MISSING
  batch_size: int = MISSING
  eval_batch_size: int = 256
  init: str = "shared"  # shared: both frameworks start from one file per seed (harness/starts.py); native
  precision: str = "float32"  # compute dtype (float32, bfloat16); parameters and optimizer state stay float32
  pretrained: str = ""  # a ViT / AugReg .npz laid over the shared start (harness/pretrained.py); '': none


@dataclasses.dataclass
class RuntimeSpec:
  """How a run executes, not what it computes: outside the config hash, so changing any of
  these never retrains a finished run."""
  log_every: int = 10  # steps between logged losses
  checkpoint_every: int = 100  # steps between checkpoints; 0: never
  threads: int = 0  # CPU threads per run; 0: the framework's default
  fast_compile: bool = False  # XLA backend optimisations off: for runs so short that compiling dominates
  micro_batches: int = 1  # gradient accumulation: a step's batch in this many parts, for memory
  data_workers: int = 0  # processes decoding train batches ahead of the step (harness/data/pipeline.py); 0: in the run's
  progress_index: int = 0  # where this run stands in a `reproduce` sweep, for the progress line
  progress_total: int = 0


@dataclasses.dataclass
class TrackingSpec:
  uri: str = ""  # '' -> $MLFLOW_TRACKING_URI, else sqlite:///<results_dir>/mlflow.db
  results_dir: str = "results"
  experiment_prefix: str = ""  # MLflow experiment = prefix + artifact name
  artifacts: bool = True  # a finished run's weights (both frameworks), config and curves in MLflow


@dataclasses.dataclass
class RunSpec:
  experiment: schemas.Experiment = MISSING
  scale: schemas.Scale = MISSING
  data: Any = MISSING  # one of DATA_SOURCES
  optim: OptimSpec = MISSING
  train: TrainSpec = MISSING
  runtime: RuntimeSpec = dataclasses.field(default_factory=RuntimeSpec)
  tracking: TrackingSpec = dataclasses.field(default_factory=TrackingSpec)
  framework: str = "jax"
  row: str = MISSING
  seed: int = 0


# The parts of a run config that do not define its result.
NOT_IDENTITY = ("runtime", "tracking")
# Keys that came after runs were recorded, left out of the hash at the value that computes what
# those runs computed, so that they stay finished.
LATER_KEYS = {("train", "precision"): "float32", ("train", "pretrained"): ""}

ConfigStore.instance().store(name="schema", node=RunSpec)
for _source, _schema in DATA_SOURCES.items():
  ConfigStore.instance().store(group="data", name=f"{_source}_schema", node=_schema)


def _one_line(error: Exception) -> str:
  """The first line of an error and of each cause (not of a context raise ... from None hid),
  plus Hydra's list of available options."""
  parts = []
  while error is not None:
    lines = [line.strip() for line in str(error).strip().splitlines()]
    if lines and lines[0] not in parts and "$VALUE" not in lines[0]:
      parts.append(lines[0].rstrip("."))
    if any(line.startswith("Available options") for line in lines):
      start = next(i for i, line in enumerate(lines) if line.startswith("Available options")) + 1
      options = [line for line in lines[start:] if line and not line.endswith("_schema")
                 and not line.startswith(("Config search", "provider="))]
      parts.append("available: " + ", ".join(options))
    error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
  return "; ".join(parts)


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
  """The composed (not yet validated) config for command-line style overrides."""
  GlobalHydra.instance().clear()
  with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
    try:
      return compose("config", overrides=list(overrides))
    except Exception as error:  # Hydra wraps OmegaConf's errors; report the root cause.
      raise ConfigError(f"bad config: {_one_line(error)}") from None


def validate(cfg: DictConfig, data_files: bool = True) -> DictConfig:
  """Checks what the schema's types cannot, the model against its data among them, before
  anything is built or tracked; raises ConfigError. data_files=False skips what needs files
  on disk (a data.root's layout, images and class count; a pretrained checkpoint's sizes):
  planning a sweep needs none. Checking that every image opens is remembered by a stamp under
  <results_dir>/data_checks/, so it runs once per dataset."""
  from harness import backends, data
  missing = sorted(OmegaConf.missing_keys(cfg))
  if missing:
    raise ConfigError(f"bad config: no value for {', '.join(missing)}")
  if cfg.framework not in FRAMEWORKS:
    raise ConfigError(f"bad config: framework={cfg.framework!r} is not one of {FRAMEWORKS}")
  if cfg.row not in cfg.experiment.rows:
    raise ConfigError(f"bad config: unknown row {cfg.row!r} of {cfg.experiment.name}; "
                      f"known: {', '.join(cfg.experiment.rows)}")
  if cfg.train.steps < 1 or cfg.train.batch_size < 1 or cfg.train.eval_batch_size < 1:
    raise ConfigError(f"bad config: train.steps={cfg.train.steps}, train.batch_size="
                      f"{cfg.train.batch_size} and train.eval_batch_size={cfg.train.eval_batch_size} "
                      "must be positive")
  try:
    check_seed(cfg.seed)
  except ValueError as error:
    raise ConfigError(f"bad config: {error}") from None
  if cfg.train.init not in INITS:
    raise ConfigError(f"bad config: train.init={cfg.train.init!r} is not one of {INITS}")
  if cfg.train.precision not in PRECISIONS:
    raise ConfigError(f"bad config: train.precision={cfg.train.precision!r} is not one of {PRECISIONS}")
  if cfg.runtime.micro_batches < 1 or cfg.train.batch_size % cfg.runtime.micro_batches:
    raise ConfigError(f"bad config: train.batch_size={cfg.train.batch_size} does not split into "
                      f"runtime.micro_batches={cfg.runtime.micro_batches} equal parts")
  if cfg.optim.warmup_steps > cfg.train.steps:
    raise ConfigError(f"bad config: optim.warmup_steps={cfg.optim.warmup_steps} exceeds "
                      f"train.steps={cfg.train.steps}")
  negative = [f"runtime.{k}={v}" for k, v in cfg.runtime.items() if not isinstance(v, bool) and v < 0]
  if negative:
    raise ConfigError(f"bad config: {', '.join(negative)} must not be negative")
  row_id = f"{cfg.experiment.name}/{cfg.row}"
  try:
    model = backends.make_config(cfg.experiment.model, model_fields(cfg))
    make_optimizer_config(cfg)
  except (ValueError, TypeError, KeyError) as error:
    raise ConfigError(f"bad config for {row_id}: {_one_line(error)}") from None
  if cfg.train.pretrained and cfg.train.init != "shared":
    raise ConfigError("bad config: train.pretrained is laid over the shared start; it needs "
                      f"train.init=shared, not {cfg.train.init!r}")
  if cfg.train.pretrained and data_files:
    from harness import pretrained
    try:
      pretrained.check(cfg.train.pretrained, cfg.experiment.model, model_fields(cfg))
    except (ValueError, OSError) as error:
      raise ConfigError(f"bad config: train.pretrained: {_one_line(error)}") from None
  files = data_files or "root" not in cfg.data
  try:
    data.check(cfg.data, model.image_size, getattr(model, "num_frames", 1), files,
               stamp_dir=pathlib.Path(cfg.tracking.results_dir) / DATA_CHECKS)
    classes = data.num_classes(cfg.data) if files else None
  except ValueError as error:
    raise ConfigError(f"bad data: {_one_line(error)}") from None
  if classes is not None and classes != model.num_classes:
    raise ConfigError(f"bad config: data {cfg.data.source} has {classes} classes but the {row_id} "
                      f"model at {cfg.scale.name} scale has {model.num_classes}")
  return cfg


def seeds_by_framework(scale, frameworks: Sequence[str], seeds: Optional[Sequence[int]] = None
                       ) -> Dict[str, Dict[str, Dict[str, List[int]]]]:
  """framework -> experiment -> row -> the seeds `reproduce` runs: `seeds` for every row if
  given; else the scale's `seeds` or the framework's own list (`framework_seeds`), only in the
  rows `framework_rows` lists for it, cut down to the seeds `experiment_seeds` lists for the
  row (`experiment/row`) or, failing that, its experiment. A row without seeds is not run."""
  from harness import registry
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


def check_seed(seed: int) -> None:
  """A run's seed seeds numpy's generators, which take none below 0."""
  if seed < 0:
    raise ValueError(f"seed={seed} is negative")


def load(overrides: Sequence[str] = ()) -> DictConfig:
  """Composes and validates a run config; raises ConfigError with a one-line message."""
  return validate(compose_config(overrides))


def for_run(cfg: DictConfig, row: str, framework: str, seed: int, data_files: bool = True) -> DictConfig:
  """A validated copy of a composed config with another row, framework and seed: what
  composing with row=, framework= and seed= overrides gives, without composing again (the
  recipe is picked by experiment and scale, which stay)."""
  run = cfg.copy()
  run.row, run.framework, run.seed = row, framework, seed
  return validate(run, data_files)


def model_fields(cfg: DictConfig) -> Dict[str, Any]:
  """The model config fields of the run's row at its scale, from the composed config (so
  that overrides such as experiment.rows.tl16_at_12.proxy.tokenlearner_at=5 apply)."""
  from harness import registry
  spec = OmegaConf.to_container(cfg.experiment, resolve=True)
  return registry.merge_fields(spec, cfg.row, cfg.scale.model_scale)


def make_optimizer_config(cfg: DictConfig):
  """The run's OptimizerConfig (total_steps = train.steps)."""
  fields = OmegaConf.to_container(cfg.optim, resolve=True)
  return OptimizerConfig(total_steps=cfg.train.steps, **fields)


def resolved(cfg: DictConfig) -> Dict[str, Any]:
  """What defines a run's result: the config without its NOT_IDENTITY parts and the row
  table, plus the row's model fields. Its hash keys the run for skip-on-rerun and resume."""
  tree = OmegaConf.to_container(cfg, resolve=True)
  for part in NOT_IDENTITY:
    tree.pop(part)
  experiment = tree.pop("experiment")
  tree["experiment"] = experiment["name"]
  from harness import registry
  tree["model"] = registry.json_fields(model_fields(cfg))
  for sweep_only in ("seeds", "framework_seeds", "framework_rows", "experiment_seeds"):  # The sweep's; a run's is `seed`.
    tree["scale"].pop(sweep_only)
  for (part, key), neutral in LATER_KEYS.items():
    if tree[part].get(key) == neutral:
      tree[part].pop(key)
  return tree


def config_hash(cfg: DictConfig) -> str:
  text = json.dumps(resolved(cfg), sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
