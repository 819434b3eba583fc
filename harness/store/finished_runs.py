"""A finished run's model, in either framework, from its logged artifacts (harness/store/artifacts.py).

    from harness.store import finished_runs
    run = finished_runs.find(run_id="3f2a...")            # or by what the run was:
    run = finished_runs.find(["experiment=table1", "row=tl16_at_12", "framework=jax", "seed=0"])
    model = finished_runs.model(run, "torch")             # the JAX-trained weights, in PyTorch
    logits = model.logits(images)                # [B, H, W, C] or [B, T, H, W, C], float32

A run is found by its MLflow run id, or by the overrides that compose its config (found by
the config's hash, as `reproduce` finds it); either way it must be FINISHED.
"""
import dataclasses
import pathlib
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf

from harness.configs import compose
from harness.store import artifacts, tracking
from harness.twins import backends


class NotFound(LookupError):
  """No finished run, or no artifacts, where one was asked for: said in one line."""


@dataclasses.dataclass
class Run:
  """A finished MLflow run and the config it was trained under."""
  tracker: tracking.Tracker
  mlflow_run: Any
  config: DictConfig

  @property
  def run_id(self) -> str:
    return self.mlflow_run.info.run_id

  def describe(self) -> str:
    c = self.config
    return (f"{c.experiment.name}/{c.row} {c.framework} {c.scale.name} seed {c.seed} "
            f"(MLflow run {tracking.short_id(self.run_id)})")


def _download(run_id: str, tracker: tracking.Tracker, path: str, into: pathlib.Path) -> pathlib.Path:
  try:
    return pathlib.Path(tracker.client.download_artifacts(run_id, path, str(into)))
  except Exception as error:  # MLflow raises OSError or MlflowException types for a missing file.
    raise NotFound(f"run {tracking.short_id(run_id)} has no artifact {path} (was it trained with "
                   f"tracking.artifacts=false, or before runs kept their weights?)") from error


def _decoded(run_id: str, tracker: tracking.Tracker, path: str, decode):
  """decode(the downloaded artifact `path` of the run), or a ValueError that names the file,
  whatever the decoder raised (safetensors' SafetensorError, msgpack's own errors, ...)."""
  with tempfile.TemporaryDirectory() as scratch:
    local = _download(run_id, tracker, path, pathlib.Path(scratch))
    try:
      return decode(local)
    except Exception as error:
      uri = tracking.retry(tracker.client.get_run, run_id).info.artifact_uri
      raise ValueError(f"artifact {uri}/{path} of run {tracking.short_id(run_id)} is damaged "
                       f"({type(error).__name__}: {tracking.one_line(error)})") from None


def find(overrides: Sequence[str] = (), run_id: Optional[str] = None) -> Run:
  """The FINISHED run with that id in the store the overrides name (tracking.*), or else the
  one the overrides compose (experiment=, row=, framework=, seed=, scale=, ...)."""
  composed = compose.compose_config(overrides)
  if tracking.database_missing(composed.tracking):  # Opening it would create an empty one.
    raise NotFound(f"no MLflow store at {tracking.tracking_uri(composed.tracking)}")
  tracker = tracking.Tracker(composed.tracking)
  if run_id:
    try:
      found = tracking.retry(tracker.client.get_run, run_id)
    except Exception as error:
      raise NotFound(f"no MLflow run {run_id} in {tracker.uri}") from error
    if found.info.status != tracking.FINISHED:
      raise NotFound(f"MLflow run {tracking.short_id(run_id)} is {found.info.status}, not FINISHED")
  else:
    cfg = compose.validate(composed, data_files=False)
    found = tracker.finished_run(cfg.experiment.name, compose.config_hash(cfg))
    if found is None:
      raise NotFound(f"no finished run of {cfg.experiment.name}/{cfg.row} {cfg.framework} "
                     f"{cfg.scale.name} seed {cfg.seed} in {tracker.uri}")
  with tempfile.TemporaryDirectory() as scratch:
    trained = OmegaConf.load(_download(found.info.run_id, tracker, artifacts.CONFIG, pathlib.Path(scratch)))
  return Run(tracker, found, trained)


@dataclasses.dataclass
class Model:
  """A run's model in one framework: `module` is the torch nn.Module (eval mode), or the Flax
  module with its `variables`."""
  framework: str
  kind: str
  fields: Mapping
  module: Any
  variables: Any = None

  def logits(self, x: np.ndarray) -> np.ndarray:
    """Float32 logits of a batch (inputs channels last, as the data sources give them)."""
    if self.framework == "jax":
      import jax
      if not hasattr(self, "_apply"):
        self._apply = jax.jit(lambda variables, x: self.module.apply(variables, x)[0])
      return np.asarray(self._apply(self.variables, x))
    import torch
    with torch.no_grad():
      return self.module(torch.from_numpy(np.asarray(x, np.float32)))[0].numpy()


def _checked(template, restored):
  """`restored` (a Flax variables tree), refused unless it has the template's paths and shapes."""
  from flax import traverse_util
  want, got = (traverse_util.flatten_dict(tree) for tree in (template, restored))
  for path in sorted(set(want) | set(got)):
    if path not in got or path not in want or tuple(want[path].shape) != np.shape(got[path]):
      raise ValueError(f"the run's Flax weights do not fit its model at {'/'.join(path)}: "
                       f"{np.shape(got[path]) if path in got else 'missing'}, model wants "
                       f"{tuple(want[path].shape) if path in want else 'none'}")
  return restored


def weights(run_id: str, tracker: tracking.Tracker) -> Dict[str, np.ndarray]:
  """A finished run's final weights in the converter's layout (its PyTorch weight file)."""
  from safetensors.numpy import load_file
  return _decoded(run_id, tracker, artifacts.TORCH_WEIGHTS, load_file)


def model(run: Run, framework: str) -> Model:
  """The run's final weights in `framework`'s model, from that framework's weight file."""
  kind, fields = run.config.experiment.model, compose.model_fields(run.config)
  if framework == "jax":
    from flax import serialization
    restored = _decoded(run.run_id, run.tracker, artifacts.JAX_WEIGHTS,
                        lambda path: serialization.msgpack_restore(path.read_bytes()))
    variables = _checked(backends.flax_shapes(kind, fields), restored)
    return Model(framework, kind, fields, backends.build("jax", kind, fields), variables)
  import torch
  from safetensors.torch import load_file
  state = _decoded(run.run_id, run.tracker, artifacts.TORCH_WEIGHTS, load_file)
  module = backends.build("torch", kind, fields)
  try:
    module.load_state_dict(state)  # Strict: every key and shape checked.
  except RuntimeError as error:
    raise ValueError(f"the run's PyTorch weights do not fit its model: {tracking.one_line(error)}") from None
  return Model(framework, kind, fields, module.eval())
