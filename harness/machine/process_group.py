"""The processes of one data-parallel run, and what they tell each other.

A run spreads over processes when it is launched by torchrun (or under a SLURM job step of
several tasks, whose variables submitit translates to torchrun's): RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT. PyTorch joins them in a process group (NCCL on GPUs, gloo on
CPUs) and trains under DistributedDataParallel; JAX initialises jax.distributed with the same
address, so one launcher serves both twins. Each process feeds its own part of the global
batch (a contiguous block, in process order), and process 0 keeps the run's bookkeeping:
claim, MLflow, checkpoints. One process per host is JAX's usual layout (its devices are all
its own), so a single-host JAX run needs no launcher at all.

A PyTorch process binds its accelerator (torchrun's LOCAL_RANK) before it joins the group, and
its collectives carry tensors on that device: NCCL refuses two ranks that share one GPU, which
is what every rank would be on an unbound cuda:0.
"""
import dataclasses
import os
import pickle
from typing import Any, List, Optional, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Group:
  index: int = 0
  count: int = 1
  framework: str = ""
  device: Any = None  # A PyTorch process's torch.device; None in JAX.

  @property
  def main(self) -> bool:
    return self.index == 0

  @property
  def part(self) -> Tuple[int, int]:
    """This process's block of a global batch: (index, count)."""
    return self.index, self.count

  def broadcast(self, value: Any = None) -> Any:
    """Process 0's `value` (any picklable object), in every process."""
    if self.count == 1:
      return value
    if self.framework == "torch":
      import torch.distributed as dist
      box = [value]
      dist.broadcast_object_list(box, src=0, device=self.device)
      return box[0]
    from jax.experimental import multihost_utils
    data = np.frombuffer(pickle.dumps(value), np.uint8) if self.main else np.zeros(0, np.uint8)
    size = int(multihost_utils.broadcast_one_to_all(np.int64(data.size)))
    padded = np.zeros(size, np.uint8)
    padded[:data.size] = data
    return pickle.loads(np.asarray(multihost_utils.broadcast_one_to_all(padded)).tobytes())

  def gather(self, value: Any) -> List[Any]:
    """Every process's `value` (any picklable object), in process order, in every process."""
    if self.count == 1:
      return [value]
    if self.framework == "torch":
      import torch.distributed as dist
      box = [None] * self.count
      dist.all_gather_object(box, value)
      return box
    from jax.experimental import multihost_utils
    data = np.frombuffer(pickle.dumps(value), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.int64(data.size))).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[:data.size] = data
    everyone = np.asarray(multihost_utils.process_allgather(padded))  # [processes, longest]
    return [pickle.loads(row[:size].tobytes()) for row, size in zip(everyone, sizes)]

  def largest(self, value: int) -> int:
    """The largest of the processes' `value`s, in every process."""
    if self.count == 1:
      return value
    if self.framework == "torch":
      import torch
      import torch.distributed as dist
      box = torch.tensor([value], dtype=torch.int64, device=self.device)
      dist.all_reduce(box, op=dist.ReduceOp.MAX)
      return int(box.item())
    from jax.experimental import multihost_utils
    return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def _launched() -> Optional[Tuple[int, int]]:
  """(rank, world size) from torchrun's variables, or from a SLURM step of several tasks
  (translated to torchrun's by submitit); None for a single process."""
  if int(os.environ.get("WORLD_SIZE", "1")) == 1 and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    from submitit.helpers import TorchDistributedEnvironment
    # Sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; not CUDA_VISIBLE_DEVICES,
    # which would leave a process one GPU numbered 0 (a JAX process drives all of its node's).
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
  world = int(os.environ.get("WORLD_SIZE", "1"))
  return (int(os.environ["RANK"]), world) if world > 1 else None


def join(framework: str) -> Group:
  """This process's group, joined once: before the framework's first computation."""
  launched = _launched()
  if launched is None:
    return Group(framework=framework)
  rank, world = launched
  if framework == "torch":
    import torch.distributed as dist
    device = bind_torch_device()
    if not dist.is_initialized():
      if device.type == "cuda":  # device_id: NCCL's communicator is made for this GPU, eagerly.
        dist.init_process_group("nccl", device_id=device)
      else:
        dist.init_process_group("gloo")
    return Group(dist.get_rank(), dist.get_world_size(), framework, device)
  import jax
  if not jax.distributed.is_initialized():
    address = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    jax.distributed.initialize(coordinator_address=address, num_processes=world, process_id=rank)
  return Group(jax.process_index(), jax.process_count(), framework)


def bind_torch_device():
  """The torch.device this process drives, made CUDA's current device: its host's GPU number
  LOCAL_RANK (0 outside torchrun), or the CPU on a host without CUDA."""
  import torch
  if not torch.cuda.is_available():
    return torch.device("cpu")
  device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
  torch.cuda.set_device(device)
  return device
