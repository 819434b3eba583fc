"""Typed schema of a run's Hydra config, and loading it with one-line errors.

The YAML under harness/conf fills this schema: `experiment` (a paper artifact
and its rows), `scale` (smoke, proxy, paper), `recipe` (picked as
<experiment>_<scale>: the data and optimizer groups and the training length),
`framework`, `tracking`. A value of the wrong type or a key the schema does not
have fails when the config is composed; `load()` then checks what types cannot
(the row exists, the model config is valid) and turns every failure into one
line that names the problem.
"""
import dataclasses
import hashlib
import json
import pathlib
from typing import Any, Dict, List, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, DictConfig, OmegaConf
from tokenlearner_spec import OptimizerConfig

CONF_DIR = pathlib.Path(__file__).parent / "conf"
FRAMEWORKS = ("jax", "torch")
SCALES = ("smoke", "proxy", "paper")


class ConfigError(ValueError):
  """A bad run config; its message is one line naming the problem."""


@dataclasses.dataclass
class ExperimentSpec:
  """A paper artifact (conf/experiment/*.yaml); the registry reads the same files."""
  name: str = MISSING
  title: str = MISSING
  model: str = MISSING  # 'vit' or 'video'
  scales: Dict[str, Any] = dataclasses.field(default_factory=dict)
  rows: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ScaleSpec:
  name: str = MISSING
  model_scale: str = MISSING  # Which experiment scale's model fields this scale trains.
  seeds: List[int] = dataclasses.field(default_factory=lambda: [0])  # what `reproduce` runs


@dataclasses.dataclass
class DataSpec:
  """One data source; the fields a source does not use are ignored by it. Image size and
  frame count are the model's (image_size, num_frames), not set here."""
  source: str = MISSING  # digits | moving_digits | imagenet | charades
  root: str = ""  # imagenet, charades: the dataset folder
  train_size: int = 0  # digits, moving_digits: examples in one pass over the train split
  test_size: int = 1000
  digit_size: int = 16  # side a source digit is scaled to
  clutter: int = 6  # digits: clutter fragments per canvas
  clutter_size: int = 5  # side of a clutter fragment
  max_digits: int = 3  # moving_digits: 1..max_digits digits per clip
  fps_stride: int = 4  # charades: keep every n-th extracted frame (24 fps / 4 = 6 fps)


@dataclasses.dataclass
class OptimSpec:
  """Optimizer and schedule; the fields of tokenlearner_spec.OptimizerConfig but
  total_steps, which is train.steps."""
  name: str = MISSING  # sgd | adamw
  learning_rate: float = 1e-3
  momentum: float = 0.9
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8
  weight_decay: float = 0.0
  warmup_steps: int = 0
  grad_clip_norm: float = 0.0
  label_smoothing: float = 0.0


@dataclasses.dataclass
class TrainSpec:
  steps: int = MISSING
  batch_size: int = MISSING
  eval_batch_size: int = 256
  log_every: int = 10  # steps between logged losses
  checkpoint_every: int = 100  # steps between checkpoints; 0: never
  threads: int = 0  # CPU threads per run; 0: the framework's default
  fast_compile: bool = False  # XLA backend optimisations off: for runs so short that compiling dominates


@dataclasses.dataclass
class TrackingSpec:
  uri: str = ""  # '' -> $MLFLOW_TRACKING_URI, else sqlite:///<results_dir>/mlflow.db
  results_dir: str = "results"
  experiment_prefix: str = ""  # MLflow experiment = prefix + artifact name


@dataclasses.dataclass
class ProgressSpec:
  """Where this run stands in a `reproduce` sweep, for the progress line."""
  index: int = 0
  total: int = 0


@dataclasses.dataclass
class RunSpec:
  experiment: ExperimentSpec = MISSING
  scale: ScaleSpec = MISSING
  data: DataSpec = MISSING
  optim: OptimSpec = MISSING
  train: TrainSpec = MISSING
  tracking: TrackingSpec = dataclasses.field(default_factory=TrackingSpec)
  progress: ProgressSpec = dataclasses.field(default_factory=ProgressSpec)
  framework: str = "jax"
  row: str = MISSING
  seed: int = 0


ConfigStore.instance().store(name="schema", node=RunSpec)


def _one_line(error: Exception) -> str:
  """The first line of an error and of each cause, plus Hydra's list of available options."""
  parts = []
  while error is not None:
    lines = [line.strip() for line in str(error).strip().splitlines()]
    if lines and lines[0] not in parts and "$VALUE" not in lines[0]:
      parts.append(lines[0])
    if any(line.startswith("Available options") for line in lines):
      start = next(i for i, line in enumerate(lines) if line.startswith("Available options")) + 1
      options = [line for line in lines[start:] if line and not line.startswith(("Config search", "provider="))]
      parts.append("available: " + ", ".join(options))
    error = error.__cause__ or error.__context__
  return "; ".join(parts)


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
  """The composed (not yet validated) config for command-line style overrides."""
  GlobalHydra.instance().clear()
  with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
    try:
      return compose("config", overrides=list(overrides))
    except Exception as error:  # Hydra wraps OmegaConf's errors; report the root cause.
      raise ConfigError(f"bad config: {_one_line(error)}") from None


def validate(cfg: DictConfig) -> DictConfig:
  """Checks what the schema's types cannot; raises ConfigError."""
  from harness import backends
  missing = sorted(OmegaConf.missing_keys(cfg))
  if missing:
    raise ConfigError(f"bad config: no value for {', '.join(missing)}")
  if cfg.framework not in FRAMEWORKS:
    raise ConfigError(f"bad config: framework={cfg.framework!r} is not one of {FRAMEWORKS}")
  if cfg.row not in cfg.experiment.rows:
    raise ConfigError(f"bad config: unknown row {cfg.row!r} of {cfg.experiment.name}; "
                      f"known: {', '.join(cfg.experiment.rows)}")
  if cfg.train.steps < 1 or cfg.train.batch_size < 1:
    raise ConfigError(f"bad config: train.steps={cfg.train.steps} and train.batch_size="
                      f"{cfg.train.batch_size} must be positive")
  if cfg.optim.warmup_steps > cfg.train.steps:
    raise ConfigError(f"bad config: optim.warmup_steps={cfg.optim.warmup_steps} exceeds "
                      f"train.steps={cfg.train.steps}")
  try:
    fields = model_fields(cfg)
    backends.make_config(cfg.experiment.model, fields)
    make_optimizer_config(cfg)
  except (ValueError, TypeError, KeyError) as error:
    raise ConfigError(f"bad config for {cfg.experiment.name}/{cfg.row}: {_one_line(error)}") from None
  return cfg


def load(overrides: Sequence[str] = ()) -> DictConfig:
  """Composes and validates a run config; raises ConfigError with a one-line message."""
  return validate(compose_config(overrides))


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
  """What defines a run's result: the config without the row table and tracking, plus the
  row's model fields. Its hash keys the run for skip-on-rerun and resume."""
  tree = OmegaConf.to_container(cfg, resolve=True)
  tree.pop("tracking")
  experiment = tree.pop("experiment")
  tree["experiment"] = experiment["name"]
  tree["model"] = {k: list(v) if isinstance(v, tuple) else v for k, v in model_fields(cfg).items()}
  for execution_only in ("log_every", "checkpoint_every", "threads", "fast_compile"):
    tree["train"].pop(execution_only)
  tree.pop("progress")
  tree["scale"].pop("seeds")  # The sweep's seed list; the run's own seed is `seed`.
  return tree


def config_hash(cfg: DictConfig) -> str:
  text = json.dumps(resolved(cfg), sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
