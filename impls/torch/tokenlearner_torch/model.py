"""Builds the model a config describes."""
import torch

from tokenlearner_spec.config import VideoConfig, ViTConfig
from tokenlearner_torch.video import VideoModel
from tokenlearner_torch.vit import ViT


def build_model(config: ViTConfig | VideoConfig) -> torch.nn.Module:
  """ViTConfig -> ViT; VideoConfig -> VideoModel. Both return (logits, intermediates)."""
  if isinstance(config, ViTConfig):
    return ViT(config)
  if isinstance(config, VideoConfig):
    return VideoModel(config)
  raise TypeError(f"expected ViTConfig or VideoConfig, got {type(config).__name__}")
