"""What the JAX and PyTorch twins must agree on, in one place and importing neither framework:
the model and optimizer configs with their validation, and the fixed-pooling arithmetic."""
from tokenlearner_spec.config import (OptimizerConfig, VideoConfig, ViTConfig, model_config,
                                      vit_config)
from tokenlearner_spec.pooling import pooling_regions

FRAMEWORKS = ("jax", "torch")  # The frameworks with a twin: impls/jax, impls/torch.

__all__ = ["FRAMEWORKS", "OptimizerConfig", "ViTConfig", "VideoConfig", "model_config",
           "pooling_regions", "vit_config"]
