"""One run over two devices (JAX: two forced host devices in one process) or two processes
(PyTorch: torchrun, gloo) trains as one device does on the same global batch, with gradient
accumulation too, and a checkpoint written in parallel resumes on one device."""
import pytest

from harness.testing import killpoints
from harness.testing.parity_log import TRAIN_LOSS_RTOL
from tests.harness.smoke import FAST_ROW, all_runs, harness, overrides, train_losses

RUN = [*FAST_ROW, "train.steps=6", "runtime.checkpoint_every=2"]
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def launch(results, framework, parallel: bool, *extra, env=None):
  """`python -m harness run` on one device, or on two: JAX in one process with two forced host
  devices, PyTorch in two processes under torchrun."""
  argv = ["run", *overrides(results, *RUN, f"framework={framework}", *extra)]
  if not parallel:
    return harness(*argv, env=env)
  if framework == "jax":
    return harness(*argv, env={**TWO_DEVICES, **(env or {})})
  return harness(*argv, env=env, launcher=["-m", "torch.distributed.run", "--standalone",
                                           "--nproc-per-node", "2", "-m", "harness"])


def losses(results):
  """The one run in `results`, and its train losses in step order."""
  (run,) = all_runs(results)
  return run, list(train_losses(results, run.info.run_id).values())


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_two_devices_train_as_one_and_their_checkpoint_resumes_on_one(tmp_path, framework):
  one = launch(tmp_path / "one", framework, False)
  assert one.returncode == 0, one.stderr[-3000:]
  _, reference = losses(tmp_path / "one")

  # Two devices, each batch in two micro-batches, killed after step 3's checkpoint; then the
  # same run resumed on one device. Steps 0-3 were trained in parallel, steps 4-5 on one.
  killed = launch(tmp_path / "two", framework, True, "runtime.micro_batches=2",
                  env={killpoints.KILL_ENV: "step:3"})
  assert killed.returncode != 0
  (run,) = all_runs(tmp_path / "two")
  assert run.info.status == "RUNNING" and run.data.tags["device"].endswith(" x2")
  resumed = launch(tmp_path / "two", framework, False, "runtime.micro_batches=2")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resuming at step 4" in resumed.stderr
  run, trajectory = losses(tmp_path / "two")
  assert run.info.status == "FINISHED" and len(trajectory) == len(reference) == 6
  assert trajectory == pytest.approx(reference, rel=TRAIN_LOSS_RTOL)


def test_a_torch_process_binds_its_gpu_before_it_joins_and_its_collectives_use_it(monkeypatch):
  """On a GPU host each rank drives the GPU torchrun numbers LOCAL_RANK: made current before
  the NCCL group is made (for that device), and carried by the first collective, which the
  bookkeeping reaches before the model exists. CUDA and the collectives are faked here."""
  import torch
  import torch.distributed as dist

  from harness.machine import process_group

  calls = []
  monkeypatch.setenv("WORLD_SIZE", "4")
  monkeypatch.setenv("RANK", "3")
  monkeypatch.setenv("LOCAL_RANK", "1")  # Rank 3 is the second process of the second host.
  monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
  monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("bind", device)))
  monkeypatch.setattr(dist, "is_initialized", lambda: bool(calls) and calls[-1][0] == "join")
  monkeypatch.setattr(dist, "init_process_group",
                      lambda backend, **kw: calls.append(("join", backend, kw.get("device_id"))))
  monkeypatch.setattr(dist, "get_rank", lambda: 3)
  monkeypatch.setattr(dist, "get_world_size", lambda: 4)
  monkeypatch.setattr(dist, "broadcast_object_list",
                      lambda box, src, device=None: calls.append(("broadcast", device)))

  group = process_group.join("torch")
  group.broadcast({"claim": "run"})

  gpu = torch.device("cuda", 1)
  assert calls == [("bind", gpu), ("join", "nccl", gpu), ("broadcast", gpu)]
  assert (group.index, group.count, group.device) == (3, 4, gpu)


def test_a_jax_process_predicts_its_own_rows_split_over_its_devices():
  """Evaluation on two devices: an odd share is padded to split evenly, and the process gets
  back its own rows, in order."""
  from tests.processes import python
  done = python("-c", "\n".join([
      "import jax, numpy as np",
      "from harness.twins.runners.jax_runner import DataParallel",
      "x = np.arange(15, dtype=np.float32).reshape(5, 3)",
      "out = DataParallel(jax.devices()).per_process(lambda batch: batch * 2 + 1, x)",
      "assert jax.device_count() == 2 and out.shape == (5, 3), out.shape",
      "np.testing.assert_array_equal(out, x * 2 + 1)"]), env=TWO_DEVICES, timeout=120)
  assert done.returncode == 0, done.stderr[-2000:]
