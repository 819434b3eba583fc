"""The Table 1 proxy base ViT built from Flax's stock blocks (nn.MultiHeadDotProductAttention):
what the twin's speed is held against."""
import flax.linen as nn
import jax.numpy as jnp

from tokenlearner_spec import ViTConfig


class StockViT(nn.Module):
  """images [B, H, W, C_in] -> (logits, {}): patch embedding, learned positions, pre-LN
  encoder layers, LayerNorm, mean over tokens, linear head; the twin's arithmetic."""
  config: ViTConfig

  @nn.compact
  def __call__(self, images, train: bool = False):
    cfg = self.config
    p = cfg.patch_size
    x = nn.Conv(cfg.hidden_size, (p, p), strides=(p, p), padding="VALID")(images)
    b, g, _, c = x.shape
    x = x.reshape(b, g * g, c)  # Shape: [B, N, C].
    x = x + self.param("pos_embedding", nn.initializers.normal(0.02), (1, g * g, c))
    for _ in range(cfg.num_layers):
      h = nn.LayerNorm(epsilon=1e-6)(x)
      x = x + nn.MultiHeadDotProductAttention(cfg.num_heads)(h, h)
      h = nn.Dense(cfg.mlp_dim)(nn.LayerNorm(epsilon=1e-6)(x))
      x = x + nn.Dense(c)(nn.gelu(h))
    x = jnp.mean(nn.LayerNorm(epsilon=1e-6)(x), axis=1)
    return nn.Dense(cfg.num_classes)(x), {}
