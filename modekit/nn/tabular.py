"""The tabular model (the papers' T-DMoE): an MoE / MoDE layer on the input features, then a tower."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..config import ModelConfig
from .moe import MoELayer


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (n, classes)
    gate_weights: torch.Tensor  # (n, e) of the (first) MoE layer
    distillation_loss: torch.Tensor  # L_KD summed over MoE layers
    balance_loss: torch.Tensor  # load-balancing loss summed over MoE layers


class TabularMoE(nn.Module):
    """x -> MoE layer (E expert MLPs, gate) -> ReLU -> [Linear -> ReLU] -> Linear -> logits."""

    def __init__(self, config: ModelConfig, reference: bool = False):
        super().__init__()
        self.config = config
        self.moe = MoELayer(
            config.n_features,
            config.expert_hidden,
            config.expert_out,
            config.n_experts,
            gate=config.gate,
            top_k=config.top_k,
            distill_among=config.distill_among,
            reference=reference,
        )
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


def build_model(config: ModelConfig, seed: int, reference: bool = False) -> nn.Module:
    """A freshly initialised model of `config.backbone`; the same seed always gives the same weights."""
    from .backbones import ConvMoE, TransformerMoE

    backbone = "mlp" if config.backbone == "auto" else config.backbone
    config.check_complete()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if backbone == "mlp":
            return TabularMoE(config, reference=reference)
        if reference:
            raise ValueError(f"reference=True is only available for backbone='mlp', not {backbone!r}")
        return ConvMoE(config) if backbone == "cnn" else TransformerMoE(config)
