"""Neural building blocks: stacked experts, gates, the MoE layer and the backbones that host it."""

from .experts import ExpertStack, ReferenceExperts
from .gates import DenseGate, GateOutput, NoisyTopKGate
from .moe import MoELayer, MoEOutput
from .tabular import ModelOutput, TabularMoE, build_model

__all__ = [
    "DenseGate",
    "ExpertStack",
    "GateOutput",
    "MoELayer",
    "MoEOutput",
    "ModelOutput",
    "NoisyTopKGate",
    "ReferenceExperts",
    "TabularMoE",
    "build_model",
]
