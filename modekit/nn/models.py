"""The models that host the MoE / MoDE layer, and the one factory that builds them.

- `TabularMoE` (the papers' T-DMoE): x -> MoE layer -> tower;
- `ConvMoE` (C-DMoE): a small CNN, then an MoE layer, then a linear head;
- `TransformerMoE` (N-DMoE, and ViT-style over image patches): every block's feed-forward is an MoE.

Every model names its MoE slot `moe`. After OneS gathering the slot holds a `DenseFeedForward` of
one expert's shape instead; `moe_layers(model)` lists the slots that still hold an MoE layer.
Axis legend: n samples, t tokens, c channels, m model width, e experts.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from modekit.config import ModelConfig
from modekit.data import Dataset
from modekit.errors import UserError
from modekit.nn.moe import MoELayer, MoEOutput


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (n, classes)
    gate_weights: torch.Tensor  # (n, e) tabular / CNN; (n, t, e) per token for a transformer's first MoE layer
    distillation_loss: torch.Tensor  # MoDE's L_KD summed over MoE layers
    balance_loss: torch.Tensor  # load-balancing loss summed over MoE layers


def _moe(config: ModelConfig, d_in: int, d_out: int, reference: bool = False) -> MoELayer:
    return MoELayer(
        d_in,
        config.expert_hidden,
        d_out,
        config.n_experts,
        gate=config.gate,
        top_k=config.top_k,
        distill_among=config.distill_among,
        reference=reference,
    )


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


class TabularMoE(nn.Module):
    """x -> MoE layer (E expert MLPs, gate) -> ReLU -> [Linear -> ReLU] -> Linear -> logits."""

    def __init__(self, config: ModelConfig, reference: bool = False):
        super().__init__()
        self.config = config
        self.moe = _moe(config, config.n_features, config.expert_out, reference)
        layers: list[nn.Module] = [nn.ReLU()]
        width = config.expert_out
        if config.tower_hidden:
            layers += [nn.Linear(width, config.tower_hidden), nn.ReLU()]
            width = config.tower_hidden
        layers.append(nn.Linear(width, config.n_classes))
        self.tower = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        moe = self.moe(x)
        return ModelOutput(self.tower(moe.output), moe.gate_weights, moe.distillation_loss, moe.balance_loss)


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
        )  # fmt: skip
        self.moe = _moe(config, c2 * (height // 4) * (width // 4), config.expert_out)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(config.expert_out, config.n_classes))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        moe = self.moe(self.features(x.reshape(-1, *self.input_shape)))
        return ModelOutput(self.head(moe.output), moe.gate_weights, moe.distillation_loss, moe.balance_loss)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + Attention(LN(x)), then x + MoE(LN(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.d_model)
        self.attention = nn.MultiheadAttention(config.d_model, config.n_heads, batch_first=True)
        self.moe_norm = nn.LayerNorm(config.d_model)
        self.moe = _moe(config, config.d_model, config.d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, MoEOutput]:
        h = self.attention_norm(x)
        attended, _ = self.attention(h, h, h, key_padding_mask=~mask, need_weights=False)
        x = x + attended
        moe = self.moe(self.moe_norm(x), mask)
        return x + moe.output, moe


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
            h, moe = block(h, mask)
            # L_KD and the balance loss add up over the MoE layers
            distillation = distillation + moe.distillation_loss
            balance = balance + moe.balance_loss
            first_gate = moe.gate_weights if first_gate is None else first_gate
        weights = mask.unsqueeze(-1).to(h.dtype)
        # masked mean over real tokens
        pooled = (self.norm(h) * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return ModelOutput(self.head(pooled), first_gate, distillation, balance)


def moe_layers(model: nn.Module) -> list[tuple[str, MoELayer]]:
    """(name, layer) of every MoE layer in a model, in order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, MoELayer)]


DEFAULT_BACKBONE = {"tabular": "mlp", "image": "cnn", "text": "transformer"}


def model_config_for(data: Dataset, config: ModelConfig | None = None) -> ModelConfig:
    """The model config completed from the data: input width, classes, image shape, vocabulary,
    and the backbone for the data's domain when it is "auto"."""
    config = config or ModelConfig()
    changes = {"n_features": data.n_features, "n_classes": data.n_classes}
    if config.backbone == "auto":
        changes["backbone"] = DEFAULT_BACKBONE[data.domain]
    if data.domain == "image":
        changes["input_shape"] = tuple(data.X_train.shape[1:])
    if data.domain == "text":
        changes["vocab_size"] = len(data.metadata["vocabulary"])
        changes["max_length"] = data.X_train.shape[1]
    return config.replace(**changes)


def build_model(config: ModelConfig, seed: int, reference: bool = False) -> nn.Module:
    """A freshly initialised model of `config.backbone`; the same seed always gives the same weights."""
    backbone = "mlp" if config.backbone == "auto" else config.backbone
    config.check_complete()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if backbone == "mlp":
            return TabularMoE(config, reference=reference)
        if reference:
            raise UserError(f"reference=True is only available for backbone='mlp', not {backbone!r}")
        return ConvMoE(config) if backbone == "cnn" else TransformerMoE(config)
