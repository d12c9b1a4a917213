"""Dataclass configs for models and training, validated on construction, and the kit's other option
bounds (scale-out, reproduce, OneS): the one place where an option's name, allowed values and help
are defined. A field made with `option(default, allowed, help)` is validated from `allowed` and the
command line builds its flag from the same field (modekit/cli/parser.py), so neither copies it.

Every field's help says why its default is what it is. Values marked (paper) come from the MoDE / OneS papers as far as
our summaries tell; values marked (ours) are defaults we chose where the papers are silent
(docs/method.md §7 and the README's "Paper values vs our defaults").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from modekit.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
GATES = ("dense", "topk")
BACKBONES = ("auto", "mlp", "cnn", "vit", "transformer")
DISTILL_AMONG = ("all", "active")
COMPILE = ("auto", True, False)
AUTO_YES_NO = {"auto": "auto", "yes": True, "no": False}  # the one spelling of a three-way switch on the command line
# options of the kit's other layers, defined here so that the command line reads them without importing those layers
EXECUTORS = ("pool", "slurm", "submitit-local", "submitit-debug")  # modekit.executors
DEFAULT_TIMEOUT_MIN = 60  # a submitit job's time limit in minutes unless --slurm-time says otherwise (ours)
MAX_WORKERS = 4096
GATHERING_METHODS = ("sum", "avg", "topk", "neurons", "svd")  # modekit.ones.gathering
TEACHER_EPOCHS = 20  # teacher and dense-baseline epochs of the `ones` command (ours)
KD_EPOCHS = TEACHER_EPOCHS  # distillation epochs per OneS student (ours)
CELL_TIMEOUT_S = {"fast": 900, "laptop": 2 * 3600, "full": 6 * 3600}  # seconds one notebook cell may run, per profile (ours)
MAX_CELL_TIMEOUT_S = 7 * 24 * 3600  # whole seconds (nbclient's timeouts are integers): a week at most
MAX_JOBS = 64  # notebooks at once (reproduce --jobs)
MAX_FIRST_SEED = 2**31 - 1_000  # numpy and torch take seeds below 2**32; a lesson adds at most a few hundred


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


@dataclass(frozen=True)
class Bound:
    """The values a numeric field allows; its config's validation and its command-line type read it."""

    kind: type  # int or float
    low: float
    high: float = math.inf
    low_open: bool = False  # float fields: low itself not allowed

    def check(self, field: str, value: Any) -> None:
        if self.kind is int:
            _check_int(field, value, int(self.low), None if self.high == math.inf else int(self.high))
        elif self.low_open:
            _check_positive(field, value, self.high, self.low)
        else:
            _check_non_negative(field, value, self.high, self.low)


def option(default: Any, allowed: Bound | tuple, help: str):
    """A config field that is also an option: `allowed` (a Bound or the tuple of choices) validates
    it, and `help` (why the default is what it is) is its documentation and its --help line."""
    return dataclasses.field(default=default, metadata={"allowed": allowed, "help": help})


def _check_options(config) -> None:
    for field in dataclasses.fields(config):
        allowed, value = field.metadata.get("allowed"), getattr(config, field.name)
        if isinstance(allowed, Bound):
            allowed.check(field.name, value)
        elif allowed is not None and not any(value is c or (isinstance(c, str) and value == c) for c in allowed):
            _fail(field.name, value, "one of " + ", ".join(repr(c) for c in allowed))


def _check_int(field: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        _fail(field, value, f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}"))


def _check_positive(field: str, value: Any, maximum: float, minimum: float = 0.0) -> None:
    """minimum < value <= maximum (default: a positive number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum < value <= maximum:
        _fail(field, value, f"a number > {minimum:g} and <= {maximum:g}")


def _check_non_negative(field: str, value: Any, maximum: float = float("inf"), minimum: float = 0.0) -> None:
    """minimum <= value <= maximum, finite (default: a finite number >= 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum or value == float("inf") or value > maximum:
        _fail(field, value, f"a finite number >= {minimum:g}" + ("" if maximum == float("inf") else f" and <= {maximum:g}"))


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    """The one check of a string option against its allowed values (configs and layers use it)."""
    if value not in choices:
        _fail(field, value, "one of " + ", ".join(repr(c) for c in choices))


def check_first_seed(value: Any, field: str = "first_seed") -> int:
    """The first of a lesson's seeds (reproduce --first-seed, a notebook's FIRST_SEED): a whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FIRST_SEED:
        _fail(field, value, f"a whole number from 0 to {MAX_FIRST_SEED}")
    return value


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
    n_experts: int = option(4, Bound(int, 1, MAX_EXPERTS), "number of experts E (the papers use 2 for probing, 4+ elsewhere; ours: 4)")
    expert_hidden: int = 64  # hidden width inside each expert MLP (ours)
    expert_out: int = 64  # width p of each expert's output e_i(x), the space MoDE distils in (ours)
    gate: str = option("dense", GATES, "dense: softmax over every expert (the papers' DMoE); topk: noisy top-k routing (SMoE)")
    top_k: int = option(
        2, Bound(int, 1, MAX_EXPERTS), "experts per sample, topk gate (k = 1: Switch, weighted by its full-softmax probability)"
    )
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
        _check_options(self)
        _check_int("expert_hidden", self.expert_hidden, 1, MAX_WIDTH)
        _check_int("expert_out", self.expert_out, 1, MAX_WIDTH)
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

    alpha: float = option(0.0, Bound(float, 0.0, MAX_ALPHA), "MoDE distillation strength in L = L_task + alpha L_KD; 0 = plain MoE")
    balance_coef: float = option(1e-2, Bound(float, 0.0), "load-balancing loss weight, top-k gates only (Switch / Shazeer convention)")
    epochs: int = option(60, Bound(int, 1, MAX_EPOCHS), "maximum epochs (ours)")
    batch_size: int = option(128, Bound(int, 1, MAX_BATCH), "samples per step (ours)")
    lr: float = option(3e-3, Bound(float, 0.0, MAX_LR, low_open=True), "AdamW learning rate (ours)")
    weight_decay: float = option(0.0, Bound(float, 0.0), "decoupled weight decay (AdamW); 0 = plain Adam")
    patience: int = option(10, Bound(int, 0, MAX_EPOCHS), "early stopping: epochs without a better validation accuracy; 0 = off")
    seed: int = option(0, Bound(int, 0, MAX_SEED), "the only source of randomness: init, shuffling, gate noise")
    # how the run is carried out (changes no result beyond float rounding; left out of the results store's key)
    device: str = option("auto", DEVICES, "auto: CUDA when available, else CPU")
    progress: bool = option(True, (True, False), "a tqdm progress bar over epochs")
    compile: bool | str = option(
        "auto",
        COMPILE,
        "the compiled training step: auto compiles on CPU, for the MLP, when the planned "
        "steps of one shape repay the compilation (decided by the caller that holds the plan); False is eager",
    )

    def __post_init__(self):
        _check_options(self)
