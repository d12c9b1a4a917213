"""Neural building blocks: stacked experts, gates, the MoE layer and the models that host it."""

from modekit.nn.experts import ExpertStack, ReferenceExperts
from modekit.nn.gates import DenseGate, GateOutput, NoisyTopKGate
from modekit.nn.models import ConvMoE, DenseFeedForward, ModelOutput, TabularMoE, TransformerMoE, build_model, model_config_for, moe_layers
from modekit.nn.moe import MoELayer, MoEOutput

__all__ = [
    "ConvMoE",
    "DenseFeedForward",
    "DenseGate",
    "ExpertStack",
    "GateOutput",
    "MoELayer",
    "MoEOutput",
    "ModelOutput",
    "NoisyTopKGate",
    "ReferenceExperts",
    "TabularMoE",
    "TransformerMoE",
    "build_model",
    "model_config_for",
    "moe_layers",
]
