"""Public ViT checkpoints (.npz, google-research/vision_transformer layout) as a run's start:
every tensor lands where it computes what it computed in ViT, both twins agree on the
result, the position embedding is resized as ViT fine-tuning does, and a checkpoint that
does not fit is refused in one line naming why."""

import jax
import numpy as np
import pytest
import torch

from harness.configs import registry
from harness.run import initial_weights
from harness.twins import backends, convert, pretrained
from tests.processes import python

TINY = {"image_size": 16, "in_channels": 3, "patch_size": 4, "hidden_size": 32, "num_layers": 2,
        "num_heads": 4, "mlp_dim": 48, "num_classes": 5}
PRETRAIN_CLASSES = 7  # The checkpoint's own head: another class count, never loaded.
# Proxy rows of every image model family: plain, pooled, k-TL without fuser, and each fuser.
ROWS = [("table1", "base"), ("table1", "pool_2x2_at_9_18"), ("table1", "tl16_at_12"),
        ("figure1", "tokenfuser_tl8"), ("figure1", "unpool_tl8"), ("figure1", "reprojection_tl8")]
ATTN = "MultiHeadDotProductAttention_1"


def random_vit(fields, seed: int, grid: int):
  """A 'pre-trained' plain ViT of the given sizes at a `grid` x `grid` token grid, in the
  checkpoint's own layout, with every entry the loader ignores (class token and its position,
  key biases, pre-training head and pre-logits). Kernels ~ 1/sqrt(fan_in); norms, biases and
  the position embedding off their init, so that a misplaced tensor changes the function."""
  cfg = backends.make_config("vit", fields)
  rng = np.random.RandomState(seed)
  c, k, p, m, cin = cfg.hidden_size, cfg.num_heads, cfg.patch_size, cfg.mlp_dim, cfg.in_channels
  d = c // k

  def kernel(*shape, fan_in):
    return (rng.randn(*shape) / np.sqrt(fan_in)).astype(np.float32)

  def small(*shape, around=0.0):
    return (around + 0.1 * rng.randn(*shape)).astype(np.float32)

  ckpt = {"embedding/kernel": kernel(p, p, cin, c, fan_in=p * p * cin), "embedding/bias": small(c),
          "cls": small(1, 1, c), "Transformer/posembed_input/pos_embedding": small(1, 1 + grid * grid, c),
          "Transformer/encoder_norm/scale": small(c, around=1.0), "Transformer/encoder_norm/bias": small(c),
          "pre_logits/kernel": kernel(c, c, fan_in=c), "pre_logits/bias": small(c),
          "head/kernel": kernel(c, PRETRAIN_CLASSES, fan_in=c), "head/bias": small(PRETRAIN_CLASSES)}
  for i in range(cfg.num_layers):
    b = f"Transformer/encoderblock_{i}/"
    for n in (0, 2):
      ckpt[f"{b}LayerNorm_{n}/scale"], ckpt[f"{b}LayerNorm_{n}/bias"] = small(c, around=1.0), small(c)
    for name in ("query", "key", "value"):
      ckpt[f"{b}{ATTN}/{name}/kernel"] = kernel(c, k, d, fan_in=c)
      ckpt[f"{b}{ATTN}/{name}/bias"] = small(k, d)
    ckpt[f"{b}{ATTN}/out/kernel"], ckpt[f"{b}{ATTN}/out/bias"] = kernel(k, d, c, fan_in=c), small(c)
    for n, (fan_in, fan_out) in enumerate(((c, m), (m, c))):
      ckpt[f"{b}MlpBlock_3/Dense_{n}/kernel"] = kernel(fan_in, fan_out, fan_in=fan_in)
      ckpt[f"{b}MlpBlock_3/Dense_{n}/bias"] = small(fan_out)
  return ckpt


def to_vit_layout(state, cfg, seed: int = 0):
  """The test's own inverse of the loader: a torch state dict -> the checkpoint layout (at
  the model's grid), with a class token, key biases and a pre-training head added."""
  rng = np.random.RandomState(seed)
  c, k = cfg.hidden_size, cfg.num_heads
  d = c // k
  pos = state["pos_embedding"]
  ckpt = {"embedding/kernel": state["embedding.weight"].transpose(2, 3, 1, 0),
          "embedding/bias": state["embedding.bias"],
          "cls": rng.randn(1, 1, c).astype(np.float32),
          "Transformer/posembed_input/pos_embedding": np.concatenate([rng.randn(1, 1, c), pos], 1),
          "Transformer/encoder_norm/scale": state["encoder_norm.weight"],
          "Transformer/encoder_norm/bias": state["encoder_norm.bias"],
          "head/kernel": rng.randn(c, PRETRAIN_CLASSES), "head/bias": rng.randn(PRETRAIN_CLASSES)}
  for i in range(cfg.num_layers):
    t, b = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
    for n, norm in ((0, "norm1"), (2, "norm2")):
      ckpt[f"{b}LayerNorm_{n}/scale"] = state[f"{t}{norm}.weight"]
      ckpt[f"{b}LayerNorm_{n}/bias"] = state[f"{t}{norm}.bias"]
    for name in ("query", "key", "value"):
      ckpt[f"{b}{ATTN}/{name}/kernel"] = state[f"{t}attn.{name}.weight"].T.reshape(c, k, d)
      bias = state.get(f"{t}attn.{name}.bias", rng.randn(c))  # Ours has no key bias; ViT's has.
      ckpt[f"{b}{ATTN}/{name}/bias"] = bias.reshape(k, d)
    ckpt[f"{b}{ATTN}/out/kernel"] = state[f"{t}attn.out.weight"].T.reshape(k, d, c)
    ckpt[f"{b}{ATTN}/out/bias"] = state[f"{t}attn.out.bias"]
    for n, fc in ((0, "fc1"), (1, "fc2")):
      ckpt[f"{b}MlpBlock_3/Dense_{n}/kernel"] = state[f"{t}mlp.{fc}.weight"].T
      ckpt[f"{b}MlpBlock_3/Dense_{n}/bias"] = state[f"{t}mlp.{fc}.bias"]
  return {key: np.asarray(v, np.float32) for key, v in ckpt.items()}


def save(tmp_path, ckpt, name="vit.npz"):
  path = tmp_path / name
  np.savez(path, **ckpt)
  return path


def start_with_random_head(kind, fields, seed=0):
  """A run's start, with a random head (at its zero init every logit is 0, hiding everything)."""
  start = initial_weights.torch_initial_weights(kind, fields, seed)
  rng = np.random.RandomState(100 + seed)
  for key in ("head.weight", "head.bias"):
    start[key] = (0.3 * rng.randn(*start[key].shape)).astype(np.float32)
  return start


def torch_forward(kind, fields, weights, x):
  model = backends.build("torch", kind, fields).eval()
  model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
  with torch.no_grad():
    logits, out = model(torch.from_numpy(x))
  return logits.numpy(), out["pre_logits"].numpy()


def jax_forward(kind, fields, weights, x):
  model = backends.build("jax", kind, fields)
  template = jax.eval_shape(model.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct(x.shape, np.float32))
  logits, out = model.apply(convert.torch_to_jax(weights, template), x)
  return np.asarray(logits), np.asarray(out["pre_logits"])


def images(cfg, batch=2, seed=1):
  return np.random.RandomState(seed).randn(*backends.input_shape("vit", cfg, batch)).astype(np.float32)


def reference_logits(ckpt, x, head_weight, head_bias, cfg):
  """ViT's forward pass read straight from the checkpoint's layout, in float64 (per-head
  DenseGeneral kernels, the key bias included), with our GAP head instead of the class token."""
  ln = lambda h, s, b: (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-6) * s + b
  gelu = lambda h: 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
  w = {key: v.astype(np.float64) for key, v in ckpt.items()}
  bsz, p, g = x.shape[0], cfg.patch_size, cfg.grid_size
  patches = x.astype(np.float64).reshape(bsz, g, p, g, p, -1)  # Shape: [B, g, p, g, p, C_in].
  patches = patches.transpose(0, 1, 3, 2, 4, 5)  # Shape: [B, g, g, p, p, C_in].
  h = np.einsum("bijpqe,pqec->bijc", patches, w["embedding/kernel"]) + w["embedding/bias"]
  h = h.reshape(bsz, g * g, -1) + w["Transformer/posembed_input/pos_embedding"][:, 1:]  # [B, N, C].
  for i in range(cfg.num_layers):
    b = f"Transformer/encoderblock_{i}/"
    y = ln(h, w[f"{b}LayerNorm_0/scale"], w[f"{b}LayerNorm_0/bias"])
    q, k, v = (np.einsum("bnc,ckd->bnkd", y, w[f"{b}{ATTN}/{n}/kernel"]) + w[f"{b}{ATTN}/{n}/bias"]
               for n in ("query", "key", "value"))
    logits = np.einsum("bqkd,bmkd->bkqm", q, k) / np.sqrt(q.shape[-1])
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    o = np.einsum("bkqm,bmkd->bqkd", attn, v)
    h = h + np.einsum("bqkd,kdc->bqc", o, w[f"{b}{ATTN}/out/kernel"]) + w[f"{b}{ATTN}/out/bias"]
    y = ln(h, w[f"{b}LayerNorm_2/scale"], w[f"{b}LayerNorm_2/bias"])
    y = gelu(y @ w[f"{b}MlpBlock_3/Dense_0/kernel"] + w[f"{b}MlpBlock_3/Dense_0/bias"])
    h = h + y @ w[f"{b}MlpBlock_3/Dense_1/kernel"] + w[f"{b}MlpBlock_3/Dense_1/bias"]
  h = ln(h, w["Transformer/encoder_norm/scale"], w["Transformer/encoder_norm/bias"])
  return h.mean(1) @ head_weight.T.astype(np.float64) + head_bias


def test_a_loaded_torch_model_computes_what_the_vit_checkpoint_computes(tmp_path):
  cfg = backends.make_config("vit", TINY)
  ckpt = random_vit(TINY, seed=0, grid=cfg.grid_size)
  start = start_with_random_head("vit", TINY)
  weights = pretrained.apply(start, save(tmp_path, ckpt), "vit", TINY)
  x = images(cfg)
  logits, _ = torch_forward("vit", TINY, weights, x)
  expected = reference_logits(ckpt, x, start["head.weight"], start["head.bias"], cfg)
  assert np.abs(logits - expected).max() <= 1e-5, np.abs(logits - expected).max()
  assert np.abs(expected).max() > 0.1  # Not trivially small.


@pytest.mark.parametrize("experiment,row", ROWS)
def test_every_mapped_tensor_round_trips_and_the_rest_keeps_the_start(experiment, row, tmp_path):
  fields = registry.model_fields(experiment, row, "proxy")
  cfg = backends.make_config("vit", fields)
  source = initial_weights.torch_initial_weights("vit", fields, seed=1)  # Another draw than the start's.
  start = initial_weights.torch_initial_weights("vit", fields, seed=0)
  path = save(tmp_path, to_vit_layout(source, cfg))
  loaded = pretrained.load(path, "vit", fields)
  own = {k for k in start if k.startswith(("head.", "tokenlearners.", "fusers."))}
  assert set(loaded) == set(start) - own  # Everything but the head and token reduction.
  for key, value in loaded.items():
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, source[key], err_msg=key)
  weights = pretrained.apply(start, path, "vit", fields)
  assert set(weights) == set(start)
  for key in start:
    np.testing.assert_array_equal(weights[key], (start if key in own else source)[key], err_msg=key)


@pytest.mark.parametrize("experiment,row", ROWS)
def test_a_loaded_checkpoint_gives_the_same_logits_in_both_frameworks(experiment, row, tmp_path):
  """Pre-trained at a 5x5 grid with a class token, fine-tuned at the row's 8x8: the resized
  position embedding included."""
  fields = registry.model_fields(experiment, row, "proxy")
  cfg = backends.make_config("vit", fields)
  assert cfg.grid_size != 5
  path = save(tmp_path, random_vit(fields, seed=2, grid=5))
  weights = pretrained.apply(start_with_random_head("vit", fields), path, "vit", fields)
  x = images(cfg)
  torch_logits, torch_pooled = torch_forward("vit", fields, weights, x)
  jax_logits, jax_pooled = jax_forward("vit", fields, weights, x)
  diffs = np.abs(torch_logits - jax_logits).max(), np.abs(torch_pooled - jax_pooled).max()
  print(f"{experiment}/{row}: max |torch - jax| logits {diffs[0]:.2e}, pre_logits {diffs[1]:.2e}")
  assert max(diffs) <= 1e-5, diffs


def test_the_position_embedding_at_the_same_grid_is_the_checkpoints_less_the_class_token():
  pos = np.random.RandomState(0).randn(1, 1 + 16, 6).astype(np.float32)
  np.testing.assert_array_equal(pretrained.resize_pos_embedding(pos, 4), pos[:, 1:])
  np.testing.assert_array_equal(pretrained.resize_pos_embedding(pos[:, 1:], 4), pos[:, 1:])  # 'gap': none.


@pytest.mark.parametrize("old,new", [(4, 7), (7, 4), (3, 8)])
def test_resizing_a_linear_position_embedding_keeps_it_linear(old, new):
  """Bilinear interpolation reproduces a linear function, and zoom maps corners to corners:
  output (u, v) samples input (u, v) * (old - 1) / (new - 1)."""
  rng = np.random.RandomState(0)
  a, b, c = rng.randn(3, 5)
  ramp = lambda i, j: a * i[..., None] + b * j[..., None] + c  # Shape: [..., 5].
  i, j = np.meshgrid(np.arange(old), np.arange(old), indexing="ij")
  pos = np.concatenate([np.full((1, 1, 5), 1e3), ramp(i, j).reshape(1, old * old, 5)], 1)
  resized = pretrained.resize_pos_embedding(pos.astype(np.float32), new)
  assert resized.shape == (1, new * new, 5) and resized.dtype == np.float32
  grid = resized.reshape(new, new, 5)
  u, v = np.meshgrid(np.arange(new), np.arange(new), indexing="ij")
  scale = (old - 1) / (new - 1)
  np.testing.assert_allclose(grid, ramp(u * scale, v * scale), atol=1e-5)
  corners = [(0, 0), (0, -1), (-1, 0), (-1, -1)]
  source = pos[0, 1:].reshape(old, old, 5)
  for corner in corners:
    np.testing.assert_allclose(grid[corner], source[corner], atol=1e-5)


def one_line_error(excinfo) -> str:
  message = str(excinfo.value)
  assert "\n" not in message, message
  return message


@pytest.mark.parametrize("field,value,message", [
    ("hidden_size", 48, "pretrained ViT .npz: hidden size 32, the model has 48"),
    ("num_heads", 2, "pretrained ViT .npz: heads 4, the model has 2"),
    ("mlp_dim", 64, "pretrained ViT .npz: MLP size 48, the model has 64"),
    ("patch_size", 8, "pretrained ViT .npz: patch size 4, the model has 8"),
    ("num_layers", 3, "pretrained ViT .npz: layer count 2, the model has 3"),
    ("in_channels", 1, "pretrained ViT .npz: input channels 3, the model has 1"),
])
def test_a_checkpoint_of_other_sizes_is_refused_naming_the_first_mismatch(field, value, message, tmp_path):
  path = save(tmp_path, random_vit(TINY, seed=0, grid=4))
  fields = {**TINY, field: value}
  with pytest.raises(ValueError) as excinfo:
    pretrained.apply(initial_weights.torch_initial_weights("vit", fields, 0), path, "vit", fields)
  assert one_line_error(excinfo) == message


def test_a_missing_file_is_refused_naming_it(tmp_path):
  path = tmp_path / "ViT-L_16.npz"
  with pytest.raises(FileNotFoundError) as excinfo:
    pretrained.apply(initial_weights.torch_initial_weights("vit", TINY, 0), path, "vit", TINY)
  assert str(path) in one_line_error(excinfo)


@pytest.mark.parametrize("key", ["Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias",
                                 f"Transformer/encoderblock_0/{ATTN}/out/kernel",
                                 "Transformer/posembed_input/pos_embedding",
                                 "Transformer/encoder_norm/scale"])
def test_a_missing_key_is_refused_naming_it(key, tmp_path):
  ckpt = random_vit(TINY, seed=0, grid=4)
  del ckpt[key]
  path = save(tmp_path, ckpt)
  with pytest.raises(ValueError) as excinfo:
    pretrained.load(path, "vit", TINY)
  assert one_line_error(excinfo) == f"pretrained ViT .npz: {path} has no {key}"


def test_the_video_model_is_refused(tmp_path):
  path = save(tmp_path, random_vit(TINY, seed=0, grid=4))
  with pytest.raises(ValueError, match="model kind 'video' has no ViT encoder") as excinfo:
    pretrained.load(path, "video", registry.model_fields("table2", "mhsa", "proxy"))
  one_line_error(excinfo)


def test_loading_a_checkpoint_imports_no_framework(tmp_path):
  """The JAX runner never imports torch; the loader must not make it (nor import JAX)."""
  path = save(tmp_path, random_vit(TINY, seed=0, grid=4))
  code = ("import sys; from harness.twins import pretrained; "
          f"pretrained.load({str(path)!r}, 'vit', {TINY!r}); "
          "print(sorted(m for m in ('torch', 'jax', 'flax') if m in sys.modules))")
  done = python("-c", code, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.strip() == "[]"
