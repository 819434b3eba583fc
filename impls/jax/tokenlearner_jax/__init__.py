"""TokenLearner ablation models in JAX/Flax; twin of tokenlearner_torch."""
from tokenlearner_jax.config import VideoConfig, ViTConfig, vit_config
from tokenlearner_jax.model import build_model

__all__ = ["ViTConfig", "VideoConfig", "vit_config", "build_model"]
