"""Backbones that host the MoE / MoDE layer: a small CNN (the papers' C-DMoE), and a transformer
encoder whose feed-forward blocks are MoE layers, over image patches (ViT-style) or token ids
(N-DMoE). The tabular model lives in tabular.py.

Every block's feed-forward part is an attribute `ffn`: an `MoELayer`, or after OneS gathering a
`DenseFeedForward` of one expert's shape. `moe_layers(model)` lists them; OneS swaps them.
Axis legend: n samples, t tokens, c channels, m model width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .moe import MoELayer, MoEOutput
from .tabular import ModelOutput


def _moe(config: ModelConfig, d_in: int, d_hidden: int, d_out: int) -> MoELayer:
    return MoELayer(d_in, d_hidden, d_out, config.n_experts, gate=config.gate, top_k=config.top_k, distill_among=config.distill_among)


class DenseFeedForward(nn.Module):
    """One expert's MLP as a plain dense block: the OneS student's replacement for an MoE layer."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(d_in, d_hidden))
        self.b1 = nn.Parameter(torch.zeros(d_hidden))
        self.w2 = nn.Parameter(torch.zeros(d_hidden, d_out))
        self.b2 = nn.Parameter(torch.zeros(d_out))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> MoEOutput:
        # y = relu(x W1 + b1) W2 + b2
        out = torch.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2
        zero = out.new_zeros(())
        return MoEOutput(out, out.new_ones(*out.shape[:-1], 1), zero, zero)


class ConvMoE(nn.Module):
    """conv(3x3, c1) -> ReLU -> maxpool -> conv(3x3, c2) -> ReLU -> maxpool -> flatten -> MoE -> ReLU -> linear."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels, height, width = config.input_shape
        c1, c2 = config.conv_channels
        self.input_shape = config.input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = c2 * (height // 4) * (width // 4)
        self.ffn = _moe(config, flat, config.expert_hidden, config.expert_out)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(config.expert_out, config.n_classes))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        moe = self.ffn(self.features(x.reshape(-1, *self.input_shape)))
        return ModelOutput(self.head(moe.output), moe.gate_weights, moe.distillation_loss, moe.balance_loss)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + Attention(LN(x)), then x + FFN(LN(x)) with FFN = MoE layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.d_model)
        self.attention = nn.MultiheadAttention(config.d_model, config.n_heads, batch_first=True)
        self.ffn_norm = nn.LayerNorm(config.d_model)
        self.ffn = _moe(config, config.d_model, config.expert_hidden, config.d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, MoEOutput]:
        h = self.attention_norm(x)
        attended, _ = self.attention(h, h, h, key_padding_mask=~mask, need_weights=False)
        x = x + attended
        ffn = self.ffn(self.ffn_norm(x), mask)
        return x + ffn.output, ffn


class TransformerMoE(nn.Module):
    """Tokens (ids, or image patches for `backbone="vit"`) -> positions -> blocks -> masked mean -> linear.

    For text, id 0 is padding: it is masked in attention, excluded from the MoDE loss and the
    pooling, so extra padding leaves the output unchanged.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.vision = config.backbone == "vit"
        if self.vision:
            channels, height, width = config.input_shape
            self.input_shape = config.input_shape
            self.embed = nn.Conv2d(channels, config.d_model, config.patch_size, stride=config.patch_size)
            n_positions = (height // config.patch_size) * (width // config.patch_size)
        else:
            self.embed = nn.Embedding(config.vocab_size, config.d_model, padding_idx=0)
            n_positions = config.max_length
        self.position = nn.Parameter(torch.randn(1, n_positions, config.d_model) * 0.02)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_classes)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.vision:
            patches = self.embed(x.reshape(-1, *self.input_shape)).flatten(2).transpose(1, 2)  # (n, t, m)
            return patches, torch.ones(patches.shape[:2], dtype=torch.bool, device=x.device)
        return self.embed(x), x != 0

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h, mask = self.tokens(x)
        h = h + self.position[:, : h.shape[1]]
        distillation, balance, first_gate = h.new_zeros(()), h.new_zeros(()), None
        for block in self.blocks:
            h, ffn = block(h, mask)
            # L_KD and the balance loss add up over the MoE layers
            distillation = distillation + ffn.distillation_loss
            balance = balance + ffn.balance_loss
            first_gate = ffn.gate_weights if first_gate is None else first_gate
        weights = mask.unsqueeze(-1).to(h.dtype)
        # masked mean over real tokens
        pooled = (self.norm(h) * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return ModelOutput(self.head(pooled), first_gate, distillation, balance)


def moe_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every MoE layer in a model, in order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, MoELayer)]
