"""A training run in PyTorch: the model, optimizer and schedule of tokenlearner_torch.

In a process group (harness/machine/process_group.py) the run is data-parallel: the model trains under
DistributedDataParallel, which all-reduces the gradients of each process's part of the
batch, and checkpoints hold the wrapped model's own state, so they resume in any group.
"""
import copy
import pathlib
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from harness.data.base import PIXEL_VALUES
from harness.machine import process_group
from harness.twins import backends
from harness.twins.runners.protocol import Weights
from tokenlearner_torch import train_step


class TorchRunner:
  def __init__(self, kind: str, fields, optim: train_step.OptimizerConfig, multilabel: bool, seed: int,
               start: Optional[Weights] = None, precision: str = "float32", micro_batches: int = 1,
               compiled: bool = False):
    torch.manual_seed(seed)
    self.parallel = dist.is_initialized() and dist.get_world_size() > 1
    self.target = process_group.bind_torch_device()
    self._pixel_values = None  # data.base.PIXEL_VALUES on the device, once a batch of pixels comes
    self._copies: Optional[torch.cuda.Stream] = None  # put's stream, on a GPU
    self.model = backends.build("torch", kind, fields)
    if start is not None:
      self.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in start.items()})
    self.model.to(self.target)
    trained = self.model
    if self.parallel:  # Starts every process from process 0's weights.
      trained = DistributedDataParallel(self.model, [self.target] if self.target.type == "cuda" else None)
    (self.optimizer, self.schedule), self._step = train_step.make_train_step(
        trained, optim, multilabel, precision, micro_batches, compiled)
    self.multilabel, self.seed, self.precision = multilabel, seed, precision
    self.num_params = backends.count_params("torch", self.model)

  def put(self, x: np.ndarray, y: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.cuda.Event]]:
    """On a GPU, copied from pinned memory on a stream of its own; the event marks the copies
    done, for train_step's stream to wait on (that batch's alone, not the next one's)."""
    labels = y if self.multilabel else y.astype(np.int64)
    if self.target.type != "cuda":
      return torch.from_numpy(x), torch.from_numpy(labels), None
    if self._copies is None:
      self._copies = torch.cuda.Stream(self.target)
    with torch.cuda.stream(self._copies):
      x, labels = (torch.from_numpy(a).pin_memory().to(self.target, non_blocking=True) for a in (x, labels))
      copied = torch.cuda.Event()
      copied.record(self._copies)
    return x, labels, copied

  def train_step(self, step: int, batch) -> torch.Tensor:
    torch.manual_seed(int(np.random.SeedSequence([self.seed, step]).generate_state(1)[0]))  # Dropout's.
    x, labels, copied = batch
    if copied is not None:  # On the compute stream once copied, the memory kept until it is done.
      compute = torch.cuda.current_stream(self.target)
      compute.wait_event(copied)
      x.record_stream(compute)
      labels.record_stream(compute)
    loss = self._step(self._unit_range(x), labels)
    if self.parallel:  # The mean over the processes' equal parts: the global batch's loss.
      dist.all_reduce(loss)
      loss = loss / dist.get_world_size()
    return loss.detach()

  def fetch(self, losses: Sequence[torch.Tensor]) -> List[float]:
    return torch.stack(list(losses)).float().cpu().tolist()

  def _unit_range(self, inputs: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (the file sources') mapped to [-1, 1] on the device
    (data.base.PIXEL_VALUES); float inputs as they are."""
    if inputs.dtype != torch.uint8:
      return inputs
    if self._pixel_values is None:
      self._pixel_values = torch.from_numpy(PIXEL_VALUES.copy()).to(self.target)
    return self._pixel_values[inputs.int()]

  @torch.no_grad()
  def predict(self, x: np.ndarray) -> np.ndarray:
    self.model.eval()
    logits = train_step.in_precision(self.model, self._unit_range(torch.from_numpy(x).to(self.target)),
                                     self.precision)[0]
    return logits.float().cpu().numpy()

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

  def weights(self) -> Weights:
    return backends.torch_state_numpy(self.model)

  def device(self) -> str:
    """e.g. 'torch:cuda:NVIDIA H100 80GB HBM3', with ' x8' for 8 data-parallel processes."""
    count = f" x{dist.get_world_size()}" if self.parallel else ""
    if self.target.type == "cuda":
      return f"torch:cuda:{torch.cuda.get_device_name(self.target)}{count}"
    return f"torch:cpu{count}"
