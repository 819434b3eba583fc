"""Shared test setup: float32 parity settings for both frameworks, and the parity CSV log
(under pytest-xdist each worker writes <csv>.<worker>; the root conftest joins them)."""
# submitit configures logging when it is first imported (logging.config.dictConfig), and that
# closes every logging handler made before it. One is absl's (flax imports absl.logging): it
# keeps the sys.stderr of its making, under pytest the capture stream, and closes it unless
# it is still sys.stderr (under capsys it is not); every later test in that process then
# failed with 'I/O operation on closed file'. Imported first, submitit configures its logger
# before that handler exists.
import submitit  # noqa: F401  (before jax and flax)

import os
import tempfile

import jax
import pytest
import torch

from harness.data import fashion_mnist
from harness.testing import tiny_datasets
from harness.testing.parity_log import ParityLog

# The proxy recipes read Fashion-MNIST, and composing one checks its files. Tests never
# download: the user cache they see (this process's and every process it starts) holds small
# noise files of the same layout, with one more train image than the validation split takes.
# Where Debian's copy is installed it is found first, as it would be for a user.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="harness-tests-cache-")
tiny_datasets.fashion_mnist(fashion_mnist.cache_dir(), train=10_001, test=20)

jax.config.update("jax_default_matmul_precision", "highest")
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def fresh_torch_rng():
  """Every test starts from the same global torch RNG state. torch modules draw their initial
  weights from it, so without this a test's weights, and its measured differences, depended
  on which tests had run before it in the same process (and so on how pytest-xdist split
  the suite): 158 of 387 checks measured other differences in two runs of the same code."""
  torch.manual_seed(0)


@pytest.fixture(scope="session")
def parity_log(request):
  log = ParityLog()
  yield log
  path = request.config.getoption("--parity-csv")
  if path and log.results:
    worker = getattr(request.config, "workerinput", {}).get("workerid")
    log.write_csv(f"{path}.{worker}" if worker else path)


@pytest.fixture
def check(parity_log):
  """Records harness.testing.parity_log.Results and fails the test, naming every differing tensor."""
  def _check(*results):
    for result in results:
      parity_log.add(result)
    failed = [r.message() for r in results if not r.passed]
    assert not failed, "\n".join(failed)
  return _check


@pytest.fixture
def fault(record_property):
  """Makes a test a case of the fault catalogue (tests/fault_catalogue.py): fault.done(text)
  says what was done to the harness, fault.happened(text) what it did."""
  from tests.fault_catalogue import DONE, HAPPENED

  class Case:
    def done(self, text: str) -> None:
      record_property(DONE, text)

    def happened(self, text: str) -> None:
      record_property(HAPPENED, text)
  return Case()
