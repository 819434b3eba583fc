"""The XLA counter's split of cost_analysis() into matmul/conv and elementwise, checked against
cost_analysis itself, and the analytic formulas on models small enough to count by hand."""
import jax
import jax.numpy as jnp
import pytest

from harness.flops import analytic, xla_count
from harness.twins import backends

F32 = jnp.float32


def spec(*shape):
  return jax.ShapeDtypeStruct(shape, F32)


def conv(x, w, strides, padding, groups=1):
  return jax.lax.conv_general_dilated(x, w, strides, padding, feature_group_count=groups,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


PURE_MATMULS = {
    "dot": (lambda a, b: a @ b, [spec(7, 5), spec(5, 3)]),
    "batched_einsum": (lambda a, b: jnp.einsum("bqkd,bmkd->bkqm", a, b),
                       [spec(2, 6, 3, 4), spec(2, 5, 3, 4)]),
    "conv_valid_strided": (lambda x, w: conv(x, w, (2, 2), "VALID"), [spec(1, 8, 8, 3), spec(2, 2, 3, 5)]),
    "conv_same_padded": (lambda x, w: conv(x, w, (1, 1), [(1, 1), (1, 1)]),
                         [spec(2, 5, 4, 3), spec(3, 3, 3, 6)]),
    "conv_grouped": (lambda x, w: conv(x, w, (1, 1), [(1, 1), (0, 0)], groups=4),
                     [spec(1, 6, 6, 4), spec(3, 1, 1, 4)]),
}


@pytest.mark.parametrize("name", sorted(PURE_MATMULS))
def test_parsed_matmuls_equal_cost_analysis_on_matmul_only_programs(name):
  fn, args = PURE_MATMULS[name]
  counted = xla_count.lower(fn, *args)
  assert counted.total_flops > 0
  assert counted.matmul_flops == counted.total_flops
  assert counted.elementwise_flops == 0


def test_padding_taps_are_the_taps_outside_the_input():
  # 3x3 SAME conv on a 4x4 grid: per axis 4 outputs x 3 taps = 12, of which 2 fall on padding.
  counted = xla_count.lower(lambda x, w: conv(x, w, (1, 1), [(1, 1), (1, 1)]), spec(1, 4, 4, 2), spec(3, 3, 2, 5))
  per_tap = 2 * 2 * 5
  assert counted.dense_matmul_flops == per_tap * 12 * 12
  assert counted.matmul_flops == per_tap * 10 * 10
  assert counted.padding_flops == per_tap * (144 - 100)


def test_elementwise_work_is_reported_apart():
  counted = xla_count.lower(lambda a, b: jax.nn.gelu(a @ b) + 1.0, spec(7, 5), spec(5, 3))
  assert counted.matmul_flops == 2 * 7 * 5 * 3
  assert counted.elementwise_flops > 0


def test_loops_are_refused_because_xla_counts_their_body_once():
  def looped(a, b):
    return jax.lax.fori_loop(0, 4, lambda i, x: x @ b, a)
  with pytest.raises(ValueError, match="while loop"):
    xla_count.lower(looped, spec(5, 5), spec(5, 5))


def test_analytic_encoder_block_by_hand():
  # n=4 tokens, c=8, mlp 16: q,k,v,out 4*4*8*8; logits and weighted sum 2*4*4*8; mlp 2*4*8*16.
  assert analytic.encoder_block(4, 8, 16) == 4 * 4 * 64 + 2 * 16 * 8 + 2 * 4 * 128


def test_analytic_vit_by_hand():
  cfg = backends.make_config("vit", dict(
      image_size=8, patch_size=4, in_channels=1, hidden_size=8, num_layers=2, num_heads=2,
      mlp_dim=16, num_classes=3, token_reduction="tokenlearner", num_tokens=2, tokenlearner_at=1))
  macs = analytic.vit(cfg)
  assert macs["embedding"] == 4 * 16 * 1 * 8  # 4 patches of 4x4x1 -> 8.
  assert macs["blocks"] == analytic.encoder_block(4, 8, 16) + analytic.encoder_block(2, 8, 16)
  # TokenLearner on the 2x2 grid: 3x3 conv 8 -> 2, three 3x3 convs 2 -> 2, weighted sums.
  assert macs["tokenlearner"] == 4 * 9 * 8 * 2 + 3 * 4 * 9 * 2 * 2 + 4 * 2 * 8
  assert macs["head"] == 8 * 3
