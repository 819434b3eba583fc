"""Parity of every building block on its own, forward and gradients, in both directions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import tokenlearner_jax as tj
import tokenlearner_torch as tt
from harness.testing.parity_log import FORWARD_ATOL, GRAD_ATOL, compare
from tests.parity.twins import DIRECTIONS, Twin, projection_loss
from tokenlearner_spec import pooling_regions
from tokenlearner_jax import layers as lj, mixers as mj, tokenlearner as tlj, video as vj
from tokenlearner_torch import layers as lt, mixers as mt, tokenlearner as tlt, video as vt

C, S, B = 16, 4, 2
VIDEO = dict(num_classes=3, num_frames=2, image_size=32, in_channels=1, stem_width=8,
             stage_widths=(16,), module_width=12, mlp_dim=16, num_tokens=S, num_heads=2)


VIT_DROPOUT = dict(num_classes=3, image_size=16, in_channels=1, patch_size=4, hidden_size=C,
                   num_layers=3, num_heads=2, mlp_dim=16, token_reduction="tokenlearner",
                   num_tokens=S, tokenlearner_at=1, tokenlearner_version="1.1", bottleneck_dim=8,
                   fuser="tokenfuser", dropout_rate=0.3)


def video_config(impl, **fields):
  return impl.VideoConfig(**{**VIDEO, **fields})


# name -> (flax module, torch module, input shapes). Each pair is built fresh per test.
MODULES = {
    "Mlp": lambda: (lj.Mlp(32, 8), lt.Mlp(C, 32, 8), [(B, 5, C)]),
    "MultiHeadAttention": lambda: (lj.MultiHeadAttention(4), lt.MultiHeadAttention(C, 4),
                                   [(B, 5, C), (B, 3, C)]),
    "EncoderBlock": lambda: (lj.EncoderBlock(4, 32), lt.EncoderBlock(C, 4, 32), [(B, 5, C)]),
    "TokenLearner": lambda: (tlj.TokenLearner(S), tlt.TokenLearner(C, S), [(B, 4, 4, C)]),
    "TokenLearnerV11": lambda: (tlj.TokenLearnerV11(S, 8), tlt.TokenLearnerV11(C, S, 8),
                                [(B, 4, 4, C)]),
    "TokenFuser": lambda: (tlj.TokenFuser(8), tlt.TokenFuser(C, S, 8), [(B, S, C), (B, 16, C)]),
    # Dropout placed as in the official modules; parity in deterministic (evaluation) mode.
    "TokenLearnerV11_dropout": lambda: (tlj.TokenLearnerV11(S, 8, 0.3), tlt.TokenLearnerV11(C, S, 8, 0.3),
                                        [(B, 4, 4, C)]),
    "TokenFuser_dropout": lambda: (tlj.TokenFuser(8, 0.3), tlt.TokenFuser(C, S, 8, 0.3),
                                   [(B, S, C), (B, 16, C)]),
    "ViT_tokenfuser_v11_dropout": lambda: (
        tj.build_model(tj.ViTConfig(**VIT_DROPOUT)), tt.build_model(tt.ViTConfig(**VIT_DROPOUT)),
        [(B, 16, 16, 1)]),
    "ReprojectionFuser": lambda: (tlj.ReprojectionFuser(4), tlt.ReprojectionFuser(C, 4),
                                  [(B, S, C), (B, 16, C)]),
    "VectorAttention": lambda: (mj.VectorAttention(), mt.VectorAttention(C), [(B, 7, C)]),
    "VectorAttention_gamma": lambda: (mj.VectorAttention(qk_dim=8), mt.VectorAttention(C, qk_dim=8),
                                      [(B, 7, C)]),
    "VectorAttention_chunked": lambda: (mj.VectorAttention(qk_dim=8, chunk_size=3),
                                        mt.VectorAttention(C, qk_dim=8, chunk_size=3), [(B, 7, C)]),
    "PriorOnlyAttention": lambda: (mj.PriorOnlyAttention(4, 7), mt.PriorOnlyAttention(C, 4, 7),
                                   [(B, 7, C)]),
    "MixerBlock_mhsa": lambda: (mj.MixerBlock("mhsa", 4, 32), mt.MixerBlock(C, "mhsa", 4, 32),
                                [(B, 7, C)]),
    "MixerBlock_vectt": lambda: (mj.MixerBlock("vectt", 4, 32), mt.MixerBlock(C, "vectt", 4, 32),
                                 [(B, 7, C)]),
    "MixerBlock_prior": lambda: (mj.MixerBlock("prior", 4, 32, num_tokens=7),
                                 mt.MixerBlock(C, "prior", 4, 32, num_tokens=7), [(B, 7, C)]),
    "ResBlock": lambda: (vj.ResBlock(2), vt.ResBlock(8, 2), [(B, 3, 4, 4, 8)]),
    "Stage": lambda: (vj.Stage(12, 1, 2), vt.Stage(8, 12, 1, 2), [(B, 3, 8, 8, 8)]),
    **{f"BottleneckTransformer_{tok}": (
        lambda tok=tok, fuser=fuser, mixer=mixer: (
            vj.BottleneckTransformer(video_config(tj, tokenizer=tok, mixer=mixer, fuser=fuser)),
            vt.BottleneckTransformer(C, video_config(tt, tokenizer=tok, mixer=mixer, fuser=fuser)),
            [(B, 2, 8, 8, C)]))
       for tok, mixer, fuser in [("all", "mhsa", "none"), ("pool", "prior", "broadcast"),
                                 ("tokenlearner", "vectt", "tokenfuser")]},
    "BottleneckTransformer_dropout": lambda: (
        vj.BottleneckTransformer(video_config(tj, dropout_rate=0.3)),
        vt.BottleneckTransformer(C, video_config(tt, dropout_rate=0.3)), [(B, 2, 8, 8, C)]),
    **{f"VideoModel_{pool}pool": (
        lambda pool=pool: (vj.VideoModel(video_config(tj, head_pool=pool)),
                           vt.VideoModel(video_config(tt, head_pool=pool)), [(B, 2, 32, 32, 1)]))
       for pool in ("mean", "max")},
}
CASES = [pytest.param(name, d, id=f"{name}-{d}") for name in MODULES for d in DIRECTIONS]


def make_twin(name, direction):
  flax_module, torch_module, shapes = MODULES[name]()
  rng = np.random.RandomState(0)
  inputs = [rng.randn(*shape).astype(np.float32) for shape in shapes]
  return Twin(flax_module, torch_module, inputs, direction)


@pytest.mark.parametrize("name,direction", CASES)
def test_module_forward_and_gradients(name, direction, check):
  twin = make_twin(name, direction)
  out_jax, out_torch = twin.forward()
  forward = compare(out_jax, out_torch, FORWARD_ATOL, model=f"module/{name}", direction=direction,
                    check="forward")
  loss_jax, loss_torch = projection_loss({k: v.shape for k, v in out_jax.items()})
  grads_jax, grads_torch = twin.grads(loss_jax, loss_torch)
  gradients = compare(grads_jax, grads_torch, GRAD_ATOL, model=f"module/{name}",
                      direction=direction, check="gradients")
  check(forward, gradients)


FUNCTIONS = {
    "unpool_fuse": (tlj.unpool_fuse, tlt.unpool_fuse, [(B, S, C), (B, 16, C), (B, S, 16)]),
    "spatial_pool_2x2": (lambda x: tlj.spatial_pool(x, 4, 2), lambda x: tlt.spatial_pool(x, 4, 2),
                         [(B, 16, C)]),
    "spatial_pool_4x4": (lambda x: tlj.spatial_pool(x, 4, 4), lambda x: tlt.spatial_pool(x, 4, 4),
                         [(B, 16, C)]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_parameter_free_function(name, check):
  """Functions without weights: outputs and input gradients (no conversion, so one direction)."""
  fn_jax, fn_torch, shapes = FUNCTIONS[name]
  rng = np.random.RandomState(0)
  inputs = [rng.randn(*shape).astype(np.float32) for shape in shapes]
  out_jax = fn_jax(*inputs)
  weights = rng.randn(*out_jax.shape).astype(np.float32)
  grads_jax = jax.grad(lambda *xs: jnp.sum(fn_jax(*xs) * weights), argnums=tuple(range(len(inputs))))(*inputs)
  xs = [torch.from_numpy(x).requires_grad_() for x in inputs]
  out_torch = fn_torch(*xs)
  torch.sum(out_torch * torch.from_numpy(weights)).backward()
  check(compare({"out": out_jax}, {"out": out_torch.detach().numpy()}, FORWARD_ATOL,
                model=f"function/{name}", direction="none", check="forward"),
        compare({f"input{i}": g for i, g in enumerate(grads_jax)},
                {f"input{i}": x.grad.numpy() for i, x in enumerate(xs)}, GRAD_ATOL,
                model=f"function/{name}", direction="none", check="gradients"))


@pytest.mark.parametrize("grid,tokens", [(8, 8), (7, 8), (4, 4), (7, 6)])
def test_pooling_regions_partition(grid, tokens):
  regions = pooling_regions(grid, tokens)
  assert regions.shape == (grid * grid, tokens)
  np.testing.assert_array_equal(regions.sum(1), 1)  # Every position in exactly one region.
  assert (regions.sum(0) > 0).all()  # No empty region.
