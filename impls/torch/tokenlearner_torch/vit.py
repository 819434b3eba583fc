"""ViT with TokenLearner, TokenFuser and its alternatives, or spatial pooling.

One class covers every image row of the paper: the base ViT, "k-TL at L"
without fuser (Figure 4(a)) and with a fuser in every block from L on
(Figure 4(b)), and average pooling of the token grid before chosen blocks.
"""
import torch
from torch import nn

from tokenlearner_spec.config import ViTConfig
from tokenlearner_torch.layers import EncoderBlock, channels_last, conv, in_float32, layer_norm
from tokenlearner_torch.tokenlearner import (ReprojectionFuser, TokenFuser, TokenLearner,
                                             TokenLearnerV11, spatial_pool, unpool_fuse)


class ViT(nn.Module):
  """images [B, H, W, C_in] -> (logits [B, classes], intermediates by name)."""

  def __init__(self, config: ViTConfig):
    super().__init__()
    cfg = self.config = config
    c, p = cfg.hidden_size, cfg.patch_size
    self.embedding = conv(cfg.in_channels, c, (p, p), stride=p)
    self.pos_embedding = nn.Parameter(torch.randn(1, cfg.grid_size ** 2, c) * 0.02)
    self.blocks = nn.ModuleList(EncoderBlock(c, cfg.num_heads, cfg.mlp_dim)
                                for _ in range(cfg.num_layers))
    if cfg.token_reduction == "tokenlearner":
      wrapped = 1 if cfg.fuser == "none" else cfg.num_layers - cfg.tokenlearner_at
      self.tokenlearners = nn.ModuleList(self._tokenlearner() for _ in range(wrapped))
      if cfg.fuser in ("tokenfuser", "reprojection"):
        self.fusers = nn.ModuleList(self._fuser() for _ in range(wrapped))
    self.encoder_norm = layer_norm(c)
    self.head = nn.Linear(c, cfg.num_classes)
    nn.init.zeros_(self.head.weight)
    nn.init.zeros_(self.head.bias)

  def _tokenlearner(self) -> nn.Module:
    cfg = self.config
    if cfg.tokenlearner_version == "1.0":
      return TokenLearner(cfg.hidden_size, cfg.num_tokens)
    return TokenLearnerV11(cfg.hidden_size, cfg.num_tokens, cfg.bottleneck_dim, cfg.dropout_rate)

  def _fuser(self) -> nn.Module:
    cfg = self.config
    if cfg.fuser == "tokenfuser":
      return TokenFuser(cfg.hidden_size, cfg.num_tokens, cfg.bottleneck_dim, cfg.dropout_rate)
    return ReprojectionFuser(cfg.hidden_size, cfg.num_heads)

  def forward(self, images):
    cfg = self.config
    out = {}
    x = channels_last(self.embedding, images)  # Shape: [B, g, g, C].
    b, grid, _, c = x.shape
    x = x.reshape(b, grid * grid, c) + self.pos_embedding  # Shape: [B, N, C].
    out["stem"] = x

    learn = cfg.token_reduction == "tokenlearner"
    for i, block in enumerate(self.blocks):
      if cfg.token_reduction == "pool" and i in cfg.pool_at:
        x = spatial_pool(x, grid, cfg.pool_window)  # Shape: [B, N / window^2, C].
        grid //= cfg.pool_window
      if learn and cfg.fuser == "none" and i == cfg.tokenlearner_at:
        x, _ = self.tokenlearners[0](x.reshape(b, grid, grid, c))  # Shape: [B, S, C].
      if learn and cfg.fuser != "none" and i >= cfg.tokenlearner_at:
        j = i - cfg.tokenlearner_at
        tokens, maps = self.tokenlearners[j](x.reshape(b, grid, grid, c))
        tokens = block(tokens)  # Shape: [B, S, C].
        if cfg.fuser == "unpool":
          x = unpool_fuse(tokens, x, maps)
        else:
          x = self.fusers[j](tokens, x)  # Shape: [B, N, C].
      else:
        x = block(x)
      out[f"block{i:02d}"] = x

    x = self.encoder_norm(x)
    out["encoded"] = x
    x = out["pre_logits"] = in_float32(lambda t: t.mean(dim=1), x)  # Global average pool: [B, C].
    logits = out["logits"] = self.head(x)
    return logits, out
