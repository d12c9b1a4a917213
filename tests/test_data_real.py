"""Real datasets from the data directory: shapes, classes and split sizes as the data README says,
training-only statistics, deterministic splits, checksums, the cache. Skipped without the data."""

import os
import shutil

import pytest
import torch

import modekit.data as D
from conftest import requires_data, shared_data_dir
from modekit.data.files import DataFileError

SHARED = shared_data_dir()

REAL = [n for n in D.available() if D.files_of(n)]
# official splits (train + validation together, test), from the shared data README
OFFICIAL = {
    "adult": (32561, 16281),
    "mnist": (60000, 10000),
    "fashion_mnist": (60000, 10000),
    "sst2": (67349, 872),
    "agnews": (10001, 7600),  # the README says 10,000 sampled rows; the file holds 10,001
    "trec": (5452, 500),
    "sst5": (8544 + 1101, 2210),
    "sst2_sentences": (6920 + 872, 1821),
}


@pytest.mark.slow
@requires_data
@pytest.mark.parametrize("name", REAL)
def test_real_dataset_shapes_classes_and_splits(name):
    data = D.load(name)
    domain, rows, features, classes = D.CATALOGUE[name]
    assert data.domain == domain and sum(data.sizes.values()) == rows
    assert data.n_classes == classes == len(torch.unique(torch.cat([data.y_train, data.y_val, data.y_test])))
    assert data.n_features == features
    if name in OFFICIAL:
        train_and_val, test = OFFICIAL[name]
        assert (data.sizes["train"] + data.sizes["val"], data.sizes["test"]) == (train_and_val, test)
    else:
        assert data.sizes["test"] == pytest.approx(0.2 * rows, abs=len(data.class_names))
    assert data.metadata["source"] and "licence" in data.metadata
    if domain == "image":
        assert data.X_train.shape[1:] == (1, 28, 28) and data.X_train.dtype == torch.float32
        assert abs(float(data.X_train.mean())) < 1e-3 and abs(float(data.X_train.std()) - 1) < 1e-3
    elif domain == "text":
        assert data.X_train.dtype == torch.int64 and data.lengths("train").min() >= 1
        assert int(data.X_train.max()) < len(data.metadata["vocabulary"])
    else:
        assert data.X_train.dtype == torch.float32
        columns = data.X_train
        one_hot = ((columns == 0) | (columns == 1)).all(0)
        if (~one_hot).any():  # dna's 180 features are all binary
            assert columns[:, ~one_hot].mean(0).abs().max() < 1e-3  # standardised with training statistics


@requires_data
def test_text_vocabulary_comes_from_training_split_only():
    data = D.load("trec")
    vocabulary = data.metadata["vocabulary"]
    assert vocabulary[:2] == ["<pad>", "<unk>"]
    used_in_train = set(torch.unique(data.X_train).tolist())
    assert used_in_train == set(range(len(vocabulary))) - ({1} - used_in_train)  # every id is used in train
    assert (data.X_test == 1).any()  # test has words training never saw


@requires_data
def test_splits_deterministic_and_seeded():
    a, b, c = D.load("segment", seed=0), D.load("segment", seed=0), D.load("segment", seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.y_train, c.y_train)
    official_a, official_b = D.load("trec", seed=0), D.load("trec", seed=1)
    assert torch.equal(official_a.y_test, official_b.y_test)  # the official test split never moves


@requires_data
def test_composites_of_real_sets():
    images = D.load("mnist+fashion_mnist", max_per_source=500)
    assert images.X_train.shape == (1000, 1, 28, 28) and images.n_classes == 20
    assert images.class_names[10] == "fashion_mnist:T-shirt/top"
    assert torch.equal(images.subtask["train"].bincount(), torch.tensor([500, 500]))
    assert (images.y_train[images.subtask["train"] == 1] >= 10).all()
    tables = D.load("penbased+optdigits", label_space="shared")
    assert tables.X_train.shape[1] == 64 and tables.n_classes == 10  # penbased padded 16 -> 64
    assert (tables.X_train[tables.subtask["train"] == 0, 16:] == 0).all()


@pytest.fixture
def private_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEKIT_DATA", str(tmp_path))
    return tmp_path


@requires_data
def test_corrupted_file_is_refused_with_both_checksums(private_data_dir):
    source = SHARED / "tabular/mlbench/Glass.csv"
    copy = private_data_dir / "tabular/mlbench/Glass.csv"
    copy.parent.mkdir(parents=True)
    content = bytearray(source.read_bytes())
    content[200] = ord("9") if content[200] != ord("9") else ord("8")
    copy.write_bytes(bytes(content))
    expected = D.files.manifest()["tabular/mlbench/Glass.csv"]["sha256"]
    with pytest.raises(DataFileError, match=rf"sha256 [0-9a-f]{{64}}, expected {expected}.*not used"):
        D.load("glass")


def test_missing_file_names_file_place_and_remedy(private_data_dir):
    with pytest.raises(DataFileError, match=r"'tabular/keel/letter.dat' not found: looked for .*letter.dat.*To obtain it"):
        D.load("letter")
    with pytest.raises(DataFileError, match=r"modekit data fetch mnist"):
        D.load("mnist")


@requires_data
def test_cache_serves_the_second_load_and_follows_source_changes(private_data_dir, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MODEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    for relative in ("text/kim2014/rt-polarity.all", "tabular/mlbench/Glass.csv"):
        (private_data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / relative, private_data_dir / relative)
    parsed = []  # every time a source is parsed rather than read from the cache
    real_cached = D.files.cached

    def counting_cached(name, source_hashes, options, build):
        return real_cached(name, source_hashes, options, lambda: parsed.append(name) or build())

    for module in (D.text, D.tabular):
        monkeypatch.setattr(module, "cached", counting_cached)
    first = D.load("mr")
    assert parsed == ["mr", "mr-ids"]  # raw texts and token ids
    second = D.load("mr")
    assert parsed == ["mr", "mr-ids"]  # nothing parsed again: both came from the cache
    assert torch.equal(first.X_train, second.X_train)
    assert len(os.listdir(os.environ["MODEKIT_CACHE"])) == 2
    glass = private_data_dir / "tabular/mlbench/Glass.csv"
    before = D.load("glass")
    lines = glass.read_text().splitlines()
    lines[1] = ",".join(["100"] * 9 + [lines[1].split(",")[-1]])
    glass.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError):
        D.load("glass")  # a changed file no longer matches the manifest
    after = D.load("glass", verify=False)  # a user's own edit: the stale cache is not used
    assert parsed == ["mr", "mr-ids", "glass", "glass"]
    assert not torch.equal(
        torch.cat([before.X_train, before.X_val, before.X_test]).sort(0).values,
        torch.cat([after.X_train, after.X_val, after.X_test]).sort(0).values,
    )


def test_every_table_file_is_in_the_manifest():
    listed = D.files.manifest()
    for name in REAL:
        for relative in D.files_of(name):
            assert relative in listed, relative


def test_fetch_checks_checksum_and_never_overwrites(private_data_dir, tmp_path_factory):
    from modekit.data.download import fetch

    server = tmp_path_factory.mktemp("server")
    good = server / "good.gz"
    good.write_bytes(b"pretend data")
    relative = "images/fashion_mnist/t10k-labels-idx1-ubyte.gz"
    with pytest.raises(DataFileError, match="expected 8d3605d1"):
        fetch("fashion_mnist", {relative: good.as_uri()})
    folder = private_data_dir / "images/fashion_mnist"
    assert not (private_data_dir / relative).exists() and (not folder.exists() or not list(folder.iterdir()))
    unlisted = "images/extra/own.bin"
    assert fetch("x", {unlisted: good.as_uri()}) == [private_data_dir / unlisted]
    (private_data_dir / unlisted).write_bytes(b"the user's edit")
    fetch("x", {unlisted: good.as_uri()})
    assert (private_data_dir / unlisted).read_bytes() == b"the user's edit"
    with pytest.raises(ValueError, match="dataset='letter' has no automatic fetch"):
        fetch("letter")
