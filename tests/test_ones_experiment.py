"""OneS's dataset chosen by the rule fixed in advance (ones.experiment.choose_dataset)."""

from types import SimpleNamespace

import pytest

from modekit.errors import UserError
from modekit.ones import experiment


@pytest.fixture
def fake_training(monkeypatch):
    """Training replaced by a table: (dataset, seed) -> (MoE accuracy, dense accuracy); which models were trained is logged."""
    accuracies, trained = {}, []

    def load(name, seed=0):
        return SimpleNamespace(
            name=name, seed=seed, domain="tabular", subsample_train=lambda n, seed: SimpleNamespace(name=name, seed=seed)
        )

    def train(data, config, train_config):
        trained.append((data.name, train_config.seed, config.gate))
        moe, dense = accuracies[(data.name, train_config.seed)]
        return SimpleNamespace(test_accuracy=dense if config.gate == "dense" else moe)

    monkeypatch.setattr(experiment, "load", load)
    monkeypatch.setattr(experiment, "train", train)
    monkeypatch.setattr(experiment, "teacher_config", lambda data, hidden: experiment.TEACHER["tabular"])
    return accuracies, trained


def test_the_first_candidate_where_the_moe_beats_dense_on_every_tuning_seed_is_chosen(fake_training):
    accuracies, trained = fake_training
    accuracies.update({("a", 7): (0.9, 0.8), ("a", 8): (0.7, 0.8),  # loses on one seed: not chosen
                       ("b", 7): (0.9, 0.8), ("b", 8): (0.85, 0.8),  # wins on both
                       ("c", 7): (0.99, 0.5), ("c", 8): (0.99, 0.5)})  # fmt: skip
    name, table = experiment.choose_dataset(["a", "b", "c"], [7, 8])
    assert name == "b"
    assert list(table.dataset) == ["a", "a", "b", "b"]  # c is never tried: the rule stops at the first that qualifies
    assert table.moe_minus_dense.tolist() == pytest.approx([0.1, -0.1, 0.1, 0.05])
    assert {seed for _, seed, _ in trained} == {7, 8}  # only the tuning seeds are used


def test_no_candidate_qualifies_the_last_is_taken_and_its_rows_say_so(fake_training):
    accuracies, _ = fake_training
    accuracies.update({("a", 1): (0.8, 0.8), ("b", 1): (0.7, 0.8)})  # a tie is not a win
    name, table = experiment.choose_dataset(["a", "b"], [1])
    assert name == "b" and (table.moe_minus_dense <= 0).all()


def test_one_candidate_is_taken_without_training(fake_training):
    _, trained = fake_training
    name, table = experiment.choose_dataset(["only"], [1, 2])
    assert name == "only" and table.empty and not trained


@pytest.mark.parametrize("candidates, seeds", [([], [1]), (["a"], [])])
def test_choose_dataset_refuses_empty_lists(candidates, seeds):
    with pytest.raises(UserError, match="at least one of each"):
        experiment.choose_dataset(candidates, seeds)
