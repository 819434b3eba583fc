"""What the JAX and PyTorch twins must agree on, in one place and importing neither framework:
the model and optimizer configs with their validation, the fixed-pooling arithmetic, and the
written-out gradient of vector attention (channel_attention)."""
from tokenlearner_spec.config import (MAX_SEED, PRECISIONS, OptimizerConfig, VideoConfig, ViTConfig,
                                      check_seed, check_step, model_config, vit_config)
from tokenlearner_spec.pooling import pooling_regions

FRAMEWORKS = ("jax", "torch")  # The frameworks with a twin: impls/jax, impls/torch.

__all__ = ["FRAMEWORKS", "MAX_SEED", "PRECISIONS", "OptimizerConfig", "ViTConfig", "VideoConfig", "check_seed",
           "check_step", "model_config", "pooling_regions", "vit_config"]
