"""Every config field rejects a bad value with a message naming the field, the value and the rule."""

import pytest

import modekit as mk
from modekit import ModelConfig, TrainConfig

BAD_MODEL = [
    ({"n_experts": 0}, r"n_experts=0 .* integer >= 1"),
    ({"n_experts": 2.5}, r"n_experts=2.5 .* integer >= 1"),
    ({"gate": "sparse"}, r"gate='sparse' .* 'dense', 'topk'"),
    ({"gate": "topk", "n_experts": 2, "top_k": 3}, r"top_k=3 .* between 1 and n_experts=2"),
    ({"top_k": 0}, r"top_k=0 .* integer >= 1"),
    ({"n_classes": 1}, r"n_classes=1 .* integer >= 2"),
    ({"expert_hidden": -4}, r"expert_hidden=-4"),
    ({"distill_among": "some"}, r"distill_among='some' .* 'all', 'active'"),
]
BAD_TRAIN = [
    ({"alpha": -0.1}, r"alpha=-0.1 .* finite number >= 0"),
    ({"alpha": float("nan")}, r"alpha=nan"),
    ({"alpha": float("inf")}, r"alpha=inf"),
    ({"lr": 0}, r"lr=0 .* number > 0"),
    ({"lr": -1e-3}, r"lr=-0.001"),
    ({"epochs": 0}, r"epochs=0 .* integer >= 1"),
    ({"batch_size": 0}, r"batch_size=0 .* integer >= 1"),
    ({"batch_size": True}, r"batch_size=True"),
    ({"device": "tpu"}, r"device='tpu' .* 'auto', 'cpu', 'cuda'"),
    ({"patience": -1}, r"patience=-1"),
    ({"seed": -3}, r"seed=-3"),
]


@pytest.mark.parametrize("changes, message", BAD_MODEL)
def test_model_config_rejects(changes, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**changes)


@pytest.mark.parametrize("changes, message", BAD_TRAIN)
def test_train_config_rejects(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_replace_revalidates():
    with pytest.raises(ValueError, match="alpha=-1"):
        TrainConfig().replace(alpha=-1)
    assert TrainConfig().replace(alpha=0.5).alpha == 0.5


def test_topk_larger_than_experts_is_fine_for_dense_gate():
    assert ModelConfig(gate="dense", n_experts=2, top_k=2).n_experts == 2


def test_a_float_bound_keeps_its_low_end_too():
    from modekit.config import Bound

    closed, open_low = Bound(float, 0.5, 2.0), Bound(float, 0.5, 2.0, low_open=True)
    closed.check("x", 0.5)
    open_low.check("x", 0.51)
    with pytest.raises(mk.UserError, match=r"x=0.4 is not allowed: x must be a finite number >= 0.5 and <= 2"):
        closed.check("x", 0.4)
    with pytest.raises(mk.UserError, match=r"x=0.5 is not allowed: x must be a number > 0.5 and <= 2"):
        open_low.check("x", 0.5)
    with pytest.raises(mk.UserError, match="x=2.5 is not allowed"):
        closed.check("x", 2.5)
