"""One training run's model and optimizer in one framework, behind the Runner protocol."""
from typing import Optional

from tokenlearner_spec import FRAMEWORKS

from harness.twins.runners.protocol import Runner, Weights


def make(framework: str, kind: str, fields, optim, multilabel: bool, seed: int,
         start: Optional[Weights] = None, cache_dir=None, precision: str = "float32",
         micro_batches: int = 1, compiled: bool = False) -> Runner:
  """The runner of a framework; cache_dir keeps JAX's compiled programs between processes."""
  if framework == "jax":
    from harness.twins.runners.jax_runner import enable_compilation_cache, JaxRunner as framework_runner
    if cache_dir is not None:
      enable_compilation_cache(cache_dir)
  elif framework == "torch":
    from harness.twins.runners.torch_runner import TorchRunner as framework_runner
  else:
    raise ValueError(f"unknown framework {framework!r}; expected one of {FRAMEWORKS}")
  return framework_runner(kind, fields, optim, multilabel, seed, start, precision, micro_batches, compiled)
