"""A finished run's artifacts in MLflow, so that any finished run can be loaded in either
framework (harness/store/finished_runs.py) or looked into (harness/maps/measure.py) without
training it again:

  model/torch.safetensors  its final weights as a PyTorch state dict (safetensors)
  model/jax.msgpack        the same weights as a Flax variables tree (flax.serialization)
  config.yaml              its resolved config (the composed run config)
  curves.csv               step, train_loss, learning_rate: every step's

Both weight files are written from the converter's layout (harness/twins/convert.py), whichever
framework trained the run, and the Flax one is checked against the model's tree on the way.
They are logged before the run is marked FINISHED: a run whose artifacts failed to log is
FAILED and trains again from its last checkpoint. tracking.artifacts=false turns them off.
"""
import csv
import pathlib
import tempfile
from typing import Mapping

import numpy as np
from omegaconf import DictConfig, OmegaConf

from harness.machine import durable
from harness.store import tracking
from harness.twins import backends, convert

TORCH_WEIGHTS, JAX_WEIGHTS = "model/torch.safetensors", "model/jax.msgpack"
CONFIG, CURVES = "config.yaml", "curves.csv"
CURVE_METRICS = ("train_loss", "learning_rate")


def write_weights(folder: pathlib.Path, kind: str, fields: Mapping, weights: Mapping[str, np.ndarray]) -> None:
  """Both frameworks' weight files of `weights` (converter layout) under `folder`."""
  from flax import serialization
  from safetensors.numpy import save_file

  (folder / TORCH_WEIGHTS).parent.mkdir(parents=True, exist_ok=True)
  save_file({k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()}, folder / TORCH_WEIGHTS)
  variables = convert.torch_to_jax(weights, backends.flax_shapes(kind, fields))
  (folder / JAX_WEIGHTS).write_bytes(serialization.msgpack_serialize(variables))


def write_curves(path: pathlib.Path, histories: Mapping[str, list]) -> None:
  """One row per step of the runs' MLflow metric histories (Metric entities by name)."""
  by_step = {}
  for name, history in histories.items():
    for metric in history:
      by_step.setdefault(metric.step, {})[name] = metric.value
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["step", *histories])
    for step in sorted(by_step):
      writer.writerow([step, *(by_step[step].get(name, "") for name in histories)])


def log(tracker: tracking.Tracker, run_id: str, cfg: DictConfig, kind: str, fields: Mapping,
        weights: Mapping[str, np.ndarray]) -> None:
  """Writes the run's artifacts to a temporary folder and logs them to its MLflow run."""
  histories = {name: tracking.retry(tracker.client.get_metric_history, run_id, name)
               for name in CURVE_METRICS}
  with tempfile.TemporaryDirectory(prefix="harness-artifacts-") as scratch:
    folder = pathlib.Path(scratch)
    with durable.storing("the run's artifacts in", folder):
      write_weights(folder, kind, fields, weights)
      (folder / CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
      write_curves(folder / CURVES, histories)
    tracker.log_artifacts(run_id, folder)
