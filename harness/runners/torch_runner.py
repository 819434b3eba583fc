"""A training run in PyTorch: the model, optimizer and schedule of tokenlearner_torch."""
import copy
import pathlib
from typing import Optional

import numpy as np
import torch

from harness import backends
from harness.runners import Weights
from tokenlearner_torch import train_step


class TorchRunner:
  def __init__(self, kind: str, fields, optim: train_step.OptimizerConfig, multilabel: bool, seed: int,
               start: Optional[Weights] = None):
    torch.manual_seed(seed)
    self.target = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    self.model = backends.build("torch", kind, fields)
    if start is not None:
      self.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in start.items()})
    self.model.to(self.target)
    (self.optimizer, self.schedule), self._step = train_step.make_train_step(self.model, optim, multilabel)
    self.multilabel, self.seed = multilabel, seed
    self.num_params = backends.count_params("torch", self.model)

  def train_step(self, step: int, x: np.ndarray, y: np.ndarray) -> float:
    torch.manual_seed(int(np.random.SeedSequence([self.seed, step]).generate_state(1)[0]))  # Dropout's.
    labels = torch.from_numpy(y) if self.multilabel else torch.from_numpy(y).long()
    return float(self._step(torch.from_numpy(x).to(self.target), labels.to(self.target)))

  @torch.no_grad()
  def predict(self, x: np.ndarray) -> np.ndarray:
    self.model.eval()
    return self.model(torch.from_numpy(x).to(self.target))[0].cpu().numpy()

  def save(self, path: pathlib.Path) -> None:
    torch.save(self._state(), path)

  def _state(self) -> dict:
    return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict()}

  def _apply(self, state: dict) -> None:
    self.model.load_state_dict(state["model"])
    self.optimizer.load_state_dict(state["optimizer"])
    self.schedule.load_state_dict(state["schedule"])

  def load(self, path: pathlib.Path) -> None:
    """All or nothing: a state that fails part-way leaves the runner as it was, so that a run
    can fall back to an older checkpoint or to its initial weights."""
    state = torch.load(path, map_location=self.target, weights_only=True)
    before = copy.deepcopy(self._state())
    try:
      self._apply(state)
    except Exception:
      self._apply(before)
      raise

  def device(self) -> str:
    if self.target.type == "cuda":
      return f"torch:cuda:{torch.cuda.get_device_name()}"
    return "torch:cpu"
