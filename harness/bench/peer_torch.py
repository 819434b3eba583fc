"""The Table 1 proxy base ViT built from PyTorch's stock blocks (nn.TransformerEncoderLayer,
which runs fused scaled-dot-product attention): what the twin's speed is held against."""
import torch
from torch import nn

from tokenlearner_spec import ViTConfig


class StockViT(nn.Module):
  """images [B, H, W, C_in] -> (logits, {}): patch embedding, learned positions, pre-LN
  encoder layers, LayerNorm, mean over tokens, linear head; the twin's arithmetic."""

  def __init__(self, cfg: ViTConfig):
    super().__init__()
    c, p = cfg.hidden_size, cfg.patch_size
    self.embedding = nn.Conv2d(cfg.in_channels, c, p, stride=p)
    self.pos_embedding = nn.Parameter(torch.randn(1, cfg.grid_size ** 2, c) * 0.02)
    layer = nn.TransformerEncoderLayer(c, cfg.num_heads, cfg.mlp_dim, dropout=0.0, activation="gelu",
                                       layer_norm_eps=1e-6, batch_first=True, norm_first=True)
    self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
    self.norm = nn.LayerNorm(c, eps=1e-6)
    self.head = nn.Linear(c, cfg.num_classes)

  def forward(self, images):
    x = self.embedding(images.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)  # Shape: [B, N, C].
    x = self.encoder(x + self.pos_embedding)
    return self.head(self.norm(x).mean(dim=1)), {}
