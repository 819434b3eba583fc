"""Shared test setup: float32 parity settings for both frameworks, and the parity CSV log."""
import jax
import pytest
import torch

from harness.parity import ParityLog

jax.config.update("jax_default_matmul_precision", "highest")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(scope="session")
def parity_log(request):
  log = ParityLog()
  yield log
  path = request.config.getoption("--parity-csv")
  if path and log.results:
    log.write_csv(path)


@pytest.fixture
def check(parity_log):
  """Records harness.parity.Results and fails the test, naming every differing tensor."""
  def _check(*results):
    for result in results:
      parity_log.add(result)
    failed = [r.message() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
  return _check
  return _check
