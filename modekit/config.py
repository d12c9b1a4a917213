"""Dataclass configs for models and training, validated on construction.

Every field carries a why-comment. Values marked (paper) come from the MoDE / OneS papers as far as
our summaries tell; values marked (ours) are defaults we chose where the papers are silent
(docs/method.md §7 and the README's "Paper values vs our defaults").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .device import DEVICES
from .errors import UserError

GATES = ("dense", "topk")
BACKBONES = ("auto", "mlp", "cnn", "vit", "transformer")
DISTILL_AMONG = ("all", "active")
COMPILE = ("auto", True, False)


def _fail(field: str, value: Any, allowed: str) -> None:
    raise UserError(f"{field}={value!r} is not allowed: {field} must be {allowed}")


# Upper bounds of sizes and counts (ours): far above any useful value, below what ends in an
# out-of-memory error or an overflow deep inside torch (memory is also checked per model: train.py)
MAX_EXPERTS = 1024
MAX_WIDTH = 65536  # hidden and output widths, d_model
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_SEED = 2**32 - 1  # numpy's and sklearn's seeds are 32-bit
MAX_LR = 10.0  # Adam steps above this only diverge
MAX_ALPHA = 1e6


def _check_int(field: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        _fail(field, value, f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}"))


def _check_positive(field: str, value: Any, maximum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= maximum:
        _fail(field, value, f"a number > 0 and <= {maximum:g}")


def _check_non_negative(field: str, value: Any, maximum: float = float("inf")) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf") or value > maximum:
        _fail(field, value, "a finite number >= 0" + ("" if maximum == float("inf") else f" and <= {maximum:g}"))


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    """The one check of a string option against its allowed values (configs and layers use it)."""
    if value not in choices:
        _fail(field, value, "one of " + ", ".join(repr(c) for c in choices))


class _Config:
    """Shared helpers: `replace` re-validates, `to_dict` for JSON and tables."""

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Shape of an MoE / MoDE model. The same MoE layer serves tabular, CNN and transformer backbones."""

    n_features: int = 8  # input width d_in (set from the dataset)
    n_classes: int = 2  # output classes (set from the dataset)
    n_experts: int = 4  # E; the papers use 2 for probing, 4+ elsewhere (ours: 4)
    expert_hidden: int = 64  # hidden width inside each expert MLP (ours)
    expert_out: int = 64  # width p of each expert's output e_i(x), the space MoDE distils in (ours)
    gate: str = "dense"  # "dense" softmax gate (papers' DMoE) or "topk" noisy top-k gate (SMoE)
    top_k: int = 2  # experts kept per sample by the "topk" gate; k = 1 and k = 2 both work
    distill_among: str = "all"  # MoDE pairs: "all" experts (default) or only the "active" ones per sample
    tower_hidden: int = 0  # 0: tower = one linear layer after the MoE; >0: an extra hidden layer (ours)
    backbone: str = "auto"  # "mlp" (tabular), "cnn", "vit" (images), "transformer" (text); auto: by data domain
    input_shape: tuple = ()  # (channels, height, width) of images (set from the dataset)
    conv_channels: tuple = (16, 32)  # CNN feature extractor widths (ours)
    d_model: int = 64  # transformer width; its MoE experts map d_model -> expert_hidden -> d_model (ours)
    n_heads: int = 4  # attention heads (ours)
    n_layers: int = 2  # transformer blocks, each with an MoE feed-forward layer (ours)
    patch_size: int = 4  # ViT patch side in pixels (ours: 4 for 28x28 -> 49 patches, use 2 for 8x8)
    vocab_size: int = 0  # text vocabulary size incl. padding and unknown (set from the dataset)
    max_length: int = 64  # tokens per text sample (set from the dataset)

    def __post_init__(self):
        _check_int("n_features", self.n_features, 1)
        _check_int("n_classes", self.n_classes, 2)
        _check_int("n_experts", self.n_experts, 1, MAX_EXPERTS)
        _check_int("expert_hidden", self.expert_hidden, 1, MAX_WIDTH)
        _check_int("expert_out", self.expert_out, 1, MAX_WIDTH)
        check_choice("gate", self.gate, GATES)
        _check_int("top_k", self.top_k, 1, MAX_EXPERTS)
        if self.gate == "topk" and self.top_k > self.n_experts:
            _fail("top_k", self.top_k, f"between 1 and n_experts={self.n_experts}")
        check_choice("distill_among", self.distill_among, DISTILL_AMONG)
        _check_int("tower_hidden", self.tower_hidden, 0, MAX_WIDTH)
        check_choice("backbone", self.backbone, BACKBONES)
        for name in ("d_model", "n_heads", "n_layers", "patch_size", "max_length"):
            _check_int(name, getattr(self, name), 1, MAX_WIDTH)
        if self.d_model % self.n_heads:
            _fail("n_heads", self.n_heads, f"a divisor of d_model={self.d_model}")
        # shapes set from the dataset (model_config_for) are checked when they are known
        if self.input_shape and len(self.input_shape) != 3:
            _fail("input_shape", self.input_shape, "(channels, height, width)")
        if self.backbone == "vit" and any(side % self.patch_size for side in self.input_shape[1:]):
            _fail("patch_size", self.patch_size, f"a divisor of the image sides {tuple(self.input_shape[1:])}")
        if self.vocab_size and self.vocab_size < 3:
            _fail("vocab_size", self.vocab_size, "an integer >= 3 (padding, unknown and at least one token)")

    def check_complete(self) -> None:
        """Before building: the backbone has the shapes it needs (model_config_for fills them in)."""
        if self.backbone in ("cnn", "vit") and not self.input_shape:
            _fail("input_shape", self.input_shape, f"set for backbone={self.backbone!r}: use image data or give (C, H, W)")
        if self.backbone == "transformer" and not self.vocab_size:
            _fail("vocab_size", self.vocab_size, "set for backbone='transformer': use text data or give the vocabulary size")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How one model is trained. alpha = 0 is plain MoE; alpha > 0 is MoDE."""

    alpha: float = 0.0  # MoDE distillation strength in L = L_task + alpha * L_KD (paper: 0.01-0.1 tabular, 1 NLP, 10 CV)
    balance_coef: float = 1e-2  # load-balancing auxiliary loss weight, top-k gates only (Switch/Shazeer convention)
    epochs: int = 60  # maximum epochs (ours)
    batch_size: int = 128  # samples per step (ours)
    lr: float = 3e-3  # Adam learning rate (ours)
    weight_decay: float = 0.0  # decoupled weight decay (AdamW); 0 = plain Adam
    patience: int = 10  # early stopping: epochs without a better validation accuracy before stopping; 0 = off
    seed: int = 0  # the only source of randomness: init, shuffling, gate noise
    device: str = "auto"  # "auto" picks CUDA when available, else CPU
    progress: bool = True  # tqdm progress bar over epochs
    # the compiled training step (modekit.compiled): "auto" compiles where it was measured faster (CPU,
    # MLP backbone, enough steps of one shape to repay the compilation); False is the eager reference
    compile: bool | str = "auto"

    def __post_init__(self):
        _check_non_negative("alpha", self.alpha, MAX_ALPHA)
        _check_non_negative("balance_coef", self.balance_coef)
        _check_int("epochs", self.epochs, 1, MAX_EPOCHS)
        _check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        _check_positive("lr", self.lr, MAX_LR)
        _check_non_negative("weight_decay", self.weight_decay)
        _check_int("patience", self.patience, 0, MAX_EPOCHS)
        _check_int("seed", self.seed, 0, MAX_SEED)
        check_choice("device", self.device, DEVICES)
        if not any(self.compile is choice or (isinstance(choice, str) and self.compile == choice) for choice in COMPILE):
            _fail("compile", self.compile, "'auto', True or False")
