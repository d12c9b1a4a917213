"""CNN, ViT-style and text transformer backbones host the same MoE / MoDE layer."""

from unittest import mock

import pytest
import torch

import modekit as mk
from modekit.nn import TransformerMoE, model_config_for, moe_layers

CASES = {
    "cnn": ("digits8x8", mk.ModelConfig()),
    "vit": ("digits8x8", mk.ModelConfig(backbone="vit", patch_size=2, d_model=32, n_heads=2)),
    "transformer": ("synthtext", mk.ModelConfig(d_model=32, n_heads=2, expert_hidden=32)),
}


@pytest.fixture(scope="module")
def datasets():
    return {"digits8x8": mk.load("digits8x8"), "synthtext": mk.load("synthtext", n_samples=600)}


@pytest.mark.parametrize("backbone", CASES)
def test_backbone_trains_and_loss_decreases(backbone, datasets):
    name, config = CASES[backbone]
    result = mk.train(datasets[name], config, mk.TrainConfig(alpha=0.5, epochs=4, patience=0, progress=False))
    assert result.model_config.backbone == backbone
    train = result.history[result.history.split == "train"]
    assert train.task_loss.iloc[-1] < train.task_loss.iloc[0]
    assert (train.distillation_loss > 0).all()


@pytest.mark.parametrize("backbone", CASES)
def test_alpha_zero_equals_moe_without_distillation_term(backbone, datasets):
    """With alpha = 0 the distillation term has no effect: the same run with L_KD forced to 0
    ends with identical weights."""
    name, config = CASES[backbone]
    train_config = mk.TrainConfig(alpha=0.0, epochs=2, patience=0, progress=False)
    ours = mk.train(datasets[name], config, train_config).model
    with mock.patch("modekit.nn.moe.mutual_distillation_loss", lambda outputs, *a: outputs.new_zeros(())):
        plain = mk.train(datasets[name], config, train_config).model
    for a, b in zip(ours.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)


def test_text_model_ignores_padding(datasets):
    data = datasets["synthtext"]
    config = model_config_for(data, CASES["transformer"][1]).replace(max_length=40)
    model = mk.build_model(config, seed=0).eval()
    ids = data.X_test[:16]
    padded = torch.nn.functional.pad(ids, (0, 16))  # 16 more padding tokens
    with torch.no_grad():
        short, long = model(ids), model(padded)
    torch.testing.assert_close(short.logits, long.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(short.distillation_loss, long.distillation_loss, rtol=1e-5, atol=1e-6)


def test_every_block_is_an_moe_layer_and_can_be_read(datasets):
    config = model_config_for(datasets["synthtext"], CASES["transformer"][1])
    model = mk.build_model(config, seed=0)
    assert isinstance(model, TransformerMoE)
    layers = moe_layers(model)
    assert [name for name, _ in layers] == ["blocks.0.moe", "blocks.1.moe"]
    assert layers[0][1].experts.w1.shape == (4, 32, 32)


@pytest.mark.parametrize("backbone", ["cnn", "transformer"])
def test_topk_gate_in_backbones(backbone, datasets):
    name, config = CASES[backbone]
    result = mk.train(datasets[name], config.replace(gate="topk", top_k=1), mk.TrainConfig(alpha=0.1, epochs=2, progress=False))
    assert 0 < result.val_accuracy <= 1


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"backbone": "rnn"}, r"backbone='rnn' .* 'auto', 'mlp', 'cnn', 'vit', 'transformer'"),
        ({"d_model": 30, "n_heads": 4}, r"n_heads=4 .* a divisor of d_model=30"),
        ({"backbone": "vit", "input_shape": (1, 28, 28), "patch_size": 5}, r"patch_size=5 .* divisor of the image sides \(28, 28\)"),
        ({"input_shape": (28, 28)}, r"input_shape=\(28, 28\) .* \(channels, height, width\)"),
    ],
)
def test_backbone_config_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        mk.ModelConfig(**changes)


def test_building_without_shapes_names_the_missing_field():
    with pytest.raises(ValueError, match="input_shape=\\(\\) .* backbone='cnn'"):
        mk.build_model(mk.ModelConfig(backbone="cnn"), seed=0)
    with pytest.raises(ValueError, match="vocab_size=0"):
        mk.build_model(mk.ModelConfig(backbone="transformer"), seed=0)
