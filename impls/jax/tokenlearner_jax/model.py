"""Builds the model a config describes."""
import flax.linen as nn

from tokenlearner_jax.video import VideoModel
from tokenlearner_jax.vit import ViT
from tokenlearner_spec.config import VideoConfig, ViTConfig


def build_model(config: ViTConfig | VideoConfig) -> nn.Module:
  """ViTConfig -> ViT; VideoConfig -> VideoModel. Both return (logits, intermediates)."""
  if isinstance(config, ViTConfig):
    return ViT(config)
  if isinstance(config, VideoConfig):
    return VideoModel(config)
  raise TypeError(f"expected ViTConfig or VideoConfig, got {type(config).__name__}")
