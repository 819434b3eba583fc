"""What the JAX and PyTorch twins must agree on, in one place and importing neither framework:
the model and optimizer configs with their validation, the fixed-pooling arithmetic, the
bfloat16 policy (precision), and the written-out gradient of vector attention
(channel_attention)."""
from tokenlearner_spec.config import (MAX_SEED, OptimizerConfig, VideoConfig, ViTConfig, check_seed,
                                      check_step, model_config, vit_config)
from tokenlearner_spec.pooling import pooling_regions
from tokenlearner_spec.precision import PRECISIONS

FRAMEWORKS = ("jax", "torch")  # The frameworks with a twin: impls/jax, impls/torch.

__all__ = ["FRAMEWORKS", "MAX_SEED", "PRECISIONS", "OptimizerConfig", "ViTConfig", "VideoConfig", "check_seed",
           "check_step", "model_config", "pooling_regions", "vit_config"]
