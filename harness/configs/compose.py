"""Composing a run's Hydra config (harness/conf, typed by schema.py) and validating it, with
one-line errors; what of it defines the run's result, and its hash.

A value of the wrong type or a key the schema does not have fails when the config is composed;
`validate()` then checks what types cannot (the row exists, the model config is valid, the
data has the model's classes) and turns every failure into one line that names the problem.
"""
import hashlib
import json
import pathlib
import re
from typing import Any, Dict, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from tokenlearner_spec import FRAMEWORKS, PRECISIONS, OptimizerConfig, check_seed

from harness.configs import conf_schemas, registry
from harness.configs.schema import INITS, BaseSpec

CONF_DIR = conf_schemas.CONF_DIR
DATA_CHECKS = "data_checks"  # <results_dir>/data_checks/: stamps of datasets whose images all open
# The parts of a run config that do not define its result.
NOT_IDENTITY = ("runtime", "tracking")
# Keys that came after runs were recorded, left out of the hash at the value that computes what
# those runs computed, so that they stay finished.
LATER_KEYS = {("train", "precision"): "float32", ("train", "pretrained"): ""}

class ConfigError(ValueError):
  """A bad run config; its message is one line naming the problem."""


def _checkpoint_in(folder: str, name: str) -> str:
  """${checkpoint_in:${train.pretrained_dir},<file>}: a paper recipe's pretrained checkpoint;
  '' while no folder is set, which require_pretrained refuses when a run is to start (planning
  and reporting need no checkpoint)."""
  return str(pathlib.Path(folder) / name) if folder else ""


def require_pretrained(cfg: DictConfig) -> None:
  """Refuses a run whose recipe names its checkpoint in train.pretrained_dir (a paper fine-tune)
  while that folder is unset."""
  named = re.fullmatch(r"\$\{checkpoint_in:[^,]+,([^}]+)\}",
                       str(OmegaConf.to_container(cfg.train, resolve=False)["pretrained"]))
  if named and not cfg.train.pretrained_dir:
    raise ConfigError(f"bad config: this recipe fine-tunes {named.group(1)}: set train.pretrained_dir "
                      "to the folder that holds it (or train.pretrained='' to train from scratch)")


def _tasks_per_node(framework: str, gpus_per_node) -> int:
  """${tasks_per_node:${framework},<GPUs>}: a SLURM task per GPU for PyTorch (a process each),
  one for JAX (its process drives the node's GPUs)."""
  return (gpus_per_node or 1) if framework == "torch" else 1


OmegaConf.register_new_resolver("checkpoint_in", _checkpoint_in, replace=True)
OmegaConf.register_new_resolver("tasks_per_node", _tasks_per_node, replace=True)
OmegaConf.register_new_resolver("sum", lambda *terms: sum(terms), replace=True)


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
  from harness import data
  from harness.twins import backends
  try:
    OmegaConf.to_container(cfg, resolve=True)  # A resolver's refusal, say ${checkpoint_in:...}'s.
  except Exception as error:
    raise ConfigError(f"bad config: {_one_line(error)}") from None
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
  if not cfg.tracking.results_dir.strip():
    raise ConfigError("bad config: tracking.results_dir is empty; name the folder for the store, "
                      "checkpoints and starts (default: results)")
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
  if cfg.runtime.log_every < 1:
    raise ConfigError(f"bad config: runtime.log_every={cfg.runtime.log_every} must be at least 1 (steps "
                      "between the loss reads)")
  row_id = f"{cfg.experiment.name}/{cfg.row}"
  try:
    model = backends.make_config(cfg.experiment.model, model_fields(cfg))
    make_optimizer_config(cfg)
  except (ValueError, TypeError, KeyError) as error:
    raise ConfigError(f"bad config for {row_id}: {_one_line(error)}") from None
  if cfg.train.pretrained and cfg.train.init != "shared":
    raise ConfigError("bad config: train.pretrained is laid over the shared start; it needs "
                      f"train.init=shared, not {cfg.train.init!r}")
  base = cfg.train.base
  if base.experiment:
    if base.experiment not in registry.EXPERIMENTS or base.row not in registry.definition(base.experiment)["rows"]:
      raise ConfigError(f"bad config: train.base names {base.experiment}/{base.row}, which is not a row")
    if (base.framework not in FRAMEWORKS or base.steps < 1 or not 0 <= base.warmup_steps <= base.steps
        or not base.learning_rate > 0):
      raise ConfigError(f"bad config: train.base needs a framework of {FRAMEWORKS}, steps >= 1, "
                        f"0 <= warmup_steps <= steps and learning_rate > 0, not {base.framework!r}, "
                        f"{base.steps}, {base.warmup_steps}, {base.learning_rate}")
    if cfg.train.init != "shared":
      raise ConfigError("bad config: train.base is laid over the shared start; it needs train.init=shared")
  if data_files:
    require_pretrained(cfg)
  if cfg.train.pretrained and data_files:
    from harness.twins import pretrained
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


def base_config(cfg: DictConfig, data_files: bool = True) -> DictConfig:
  """The validated config of the base the run `cfg` fine-tunes (train.base,
  harness/run/base_model.py): its row trained `base.steps` steps at its own learning rate by
  `base.framework`, with the run's other settings, scored on the validation split."""
  base = cfg.train.base
  out = cfg.copy()
  out.experiment = OmegaConf.merge(OmegaConf.structured(conf_schemas.Experiment),
                                   registry.definition(base.experiment))
  out.row, out.framework = base.row, base.framework
  out.train.steps = base.steps
  out.optim.learning_rate, out.optim.warmup_steps = base.learning_rate, base.warmup_steps
  out.train.base = OmegaConf.structured(BaseSpec)
  out.tracking.artifacts = True  # Its rows start from its kept weights.
  out.runtime.progress_index = out.runtime.progress_total = 0  # Not a run of the sweep's count.
  if "eval_split" in out.data:
    out.data.eval_split = "validation"
  return validate(out, data_files)


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
  tree["model"] = registry.json_fields(model_fields(cfg))
  for sweep_only in ("seeds", "framework_seeds", "framework_rows", "experiment_seeds"):  # The sweep's; a run's is `seed`.
    tree["scale"].pop(sweep_only)
  for (part, key), neutral in LATER_KEYS.items():
    if tree[part].get(key) == neutral:
      tree[part].pop(key)
  tree["train"].pop("pretrained_dir")  # A means to name train.pretrained, which is keyed.
  tree["data"].pop("frame_cache", None)  # Where Charades' decoded frames are kept: the same pixels.
  if not cfg.train.base.experiment:  # No base (as before runs could have one): nothing to key.
    tree["train"].pop("base")
  else:  # The base's identity, whatever defines it (say, its row's model in its experiment file).
    tree["train"]["base"]["config_hash"] = config_hash(base_config(cfg, data_files=False))
  return tree


def config_hash(cfg: DictConfig) -> str:
  return hash_of(resolved(cfg))


def hash_of(resolved_tree: Dict[str, Any]) -> str:
  """The hash of what `resolved` returns."""
  text = json.dumps(resolved_tree, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
