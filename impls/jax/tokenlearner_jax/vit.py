"""ViT with TokenLearner, TokenFuser and its alternatives, or spatial pooling.

One class covers every image row of the paper: the base ViT, "k-TL at L"
without fuser (Figure 4(a)) and with a fuser in every block from L on
(Figure 4(b)), and average pooling of the token grid before chosen blocks.
"""
import flax.linen as nn
import jax.numpy as jnp

from tokenlearner_jax.layers import Conv, EncoderBlock, dense, in_float32, layer_norm
from tokenlearner_jax.tokenlearner import (ReprojectionFuser, TokenFuser, TokenLearner,
                                           TokenLearnerV11, spatial_pool, unpool_fuse)
from tokenlearner_spec.config import ViTConfig


class ViT(nn.Module):
  """images [B, H, W, C_in] -> (logits [B, classes], intermediates by name).

  conv_impl: how every convolution runs (cpu_rewrites.CONV_IMPLS); it changes the program
  XLA sees, not the function or the parameters.
  """
  config: ViTConfig
  conv_impl: str = "auto"

  def _tokenlearner(self, name: str, grid_tokens, deterministic: bool):
    cfg = self.config
    if cfg.tokenlearner_version == "1.0":
      return TokenLearner(cfg.num_tokens, self.conv_impl, name=name)(grid_tokens)
    learner = TokenLearnerV11(cfg.num_tokens, cfg.bottleneck_dim, cfg.dropout_rate, name=name)
    return learner(grid_tokens, deterministic)

  def _fuser(self, name: str, tokens, original, deterministic: bool):
    cfg = self.config
    if cfg.fuser == "tokenfuser":
      return TokenFuser(cfg.bottleneck_dim, cfg.dropout_rate, name=name)(tokens, original, deterministic)
    return ReprojectionFuser(cfg.num_heads, name=name)(tokens, original)

  @nn.compact
  def __call__(self, images, train: bool = False):
    """train: dropout on (it draws from the 'dropout' rng)."""
    cfg = self.config
    out = {}
    p = cfg.patch_size
    x = Conv(cfg.hidden_size, (p, p), (p, p), "VALID", impl=self.conv_impl, name="embedding")(images)
    b, grid, _, c = x.shape
    x = x.reshape(b, grid * grid, c)  # Shape: [B, N, C].
    x = x + self.param("pos_embedding", nn.initializers.normal(0.02), (1, grid * grid, c))
    out["stem"] = x

    learn = cfg.token_reduction == "tokenlearner"
    for i in range(cfg.num_layers):
      block = EncoderBlock(cfg.num_heads, cfg.mlp_dim, name=f"blocks_{i}")
      if cfg.token_reduction == "pool" and i in cfg.pool_at:
        x = spatial_pool(x, grid, cfg.pool_window)  # Shape: [B, N / window^2, C].
        grid //= cfg.pool_window
      if learn and cfg.fuser == "none" and i == cfg.tokenlearner_at:
        x, _ = self._tokenlearner("tokenlearners_0", x.reshape(b, grid, grid, c), not train)
      if learn and cfg.fuser != "none" and i >= cfg.tokenlearner_at:
        j = i - cfg.tokenlearner_at
        tokens, maps = self._tokenlearner(f"tokenlearners_{j}", x.reshape(b, grid, grid, c), not train)
        tokens = block(tokens)  # Shape: [B, S, C].
        if cfg.fuser == "unpool":
          x = unpool_fuse(tokens, x, maps)
        else:
          x = self._fuser(f"fusers_{j}", tokens, x, not train)  # Shape: [B, N, C].
      else:
        x = block(x)
      out[f"block{i:02d}"] = x

    x = layer_norm("encoder_norm")(x)
    out["encoded"] = x
    x = out["pre_logits"] = in_float32(lambda t: jnp.mean(t, axis=1), x)  # Global average pool: [B, C].
    zeros = nn.initializers.zeros
    logits = dense(cfg.num_classes, kernel_init=zeros, bias_init=zeros, name="head")(x)
    out["logits"] = logits
    return logits, out
