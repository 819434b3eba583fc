"""One training run's model and optimizer in a framework, behind one small interface:
train_step(x, y) -> loss, predict(x) -> logits, save(path) / load(path)."""


def make(framework: str, kind: str, fields, optim, multilabel: bool, seed: int, cache_dir=None):
  """The runner of a framework; cache_dir keeps JAX's compiled programs between processes."""
  if framework == "jax":
    from harness.runners.jax_runner import JaxRunner as Runner, enable_compilation_cache
    if cache_dir is not None:
      enable_compilation_cache(cache_dir)
  elif framework == "torch":
    from harness.runners.torch_runner import TorchRunner as Runner
  else:
    raise ValueError(f"unknown framework {framework!r}; expected jax or torch")
  return Runner(kind, fields, optim, multilabel, seed)
