"""One training run's model and optimizer in a framework, behind one small interface:
train_step(x, y) -> loss, predict(x) -> logits, save(path) / load(path)."""


def make(framework: str, kind: str, fields, optim, multilabel: bool, seed: int):
  if framework == "jax":
    from harness.runners.jax_runner import JaxRunner as Runner
  elif framework == "torch":
    from harness.runners.torch_runner import TorchRunner as Runner
  else:
    raise ValueError(f"unknown framework {framework!r}; expected jax or torch")
  return Runner(kind, fields, optim, multilabel, seed)
