"""TokenLearner ablation models in JAX/Flax; twin of tokenlearner_torch."""
from tokenlearner_jax.model import build_model
from tokenlearner_spec.config import VideoConfig, ViTConfig, vit_config

__all__ = ["ViTConfig", "VideoConfig", "vit_config", "build_model"]
