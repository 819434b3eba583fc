"""One run's typed spec, derived once from its validated config and passed down to whatever
trains, records or loads it: the model's kind, fields and config, the optimizer config, the
config hash that keys the run, and its names."""
import dataclasses
from typing import Any, Dict, Sequence

from omegaconf import DictConfig
from tokenlearner_spec import OptimizerConfig

from harness.configs import compose
from harness.twins import backends


@dataclasses.dataclass(frozen=True)
class RunSpec:
  cfg: DictConfig  # the validated config, for the groups read as they are (train, data, runtime, ...)
  kind: str  # the experiment's model kind: 'vit' or 'video'
  fields: Dict[str, Any]  # the row's model config fields at the run's scale
  model: Any  # tokenlearner_spec.ViTConfig or VideoConfig built from `fields`
  optimizer: OptimizerConfig
  config_hash: str  # keys the run: skip when finished, resume from its checkpoints
  resolved: Dict[str, Any]  # what defines the run's result (logged as its MLflow params)
  role: str = ""  # what the run is to the run that asked for it ('base model'); '' for a row's own

  @property
  def row_id(self) -> str:
    return f"{self.cfg.experiment.name}/{self.cfg.row}"

  @property
  def name(self) -> str:
    cfg = self.cfg
    return f"{self.row_id} {cfg.framework} {cfg.scale.name} seed {cfg.seed}" + (
        f" ({self.role})" if self.role else "")


def of(cfg: DictConfig) -> RunSpec:
  """The spec of a validated config (compose.validate)."""
  fields, resolved = compose.model_fields(cfg), compose.resolved(cfg)
  return RunSpec(cfg=cfg, kind=cfg.experiment.model, fields=fields,
                 model=backends.make_config(cfg.experiment.model, fields),
                 optimizer=compose.make_optimizer_config(cfg), config_hash=compose.hash_of(resolved),
                 resolved=resolved)


def load(overrides: Sequence[str] = ()) -> RunSpec:
  """Composes, validates and specs a run; raises compose.ConfigError with a one-line message."""
  return of(compose.load(overrides))
