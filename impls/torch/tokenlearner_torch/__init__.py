"""TokenLearner ablation models in PyTorch; twin of tokenlearner_jax."""
from tokenlearner_spec.config import VideoConfig, ViTConfig, vit_config
from tokenlearner_torch.model import build_model

__all__ = ["ViTConfig", "VideoConfig", "vit_config", "build_model"]
