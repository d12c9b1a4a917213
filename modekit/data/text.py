"""Text classification sets as padded token-id tensors.

Tokeniser: lower-case, then runs of letters / digits / apostrophes, or single punctuation marks
(deterministic, no downloads). Vocabulary from the training split only: the `max_vocab` most
frequent tokens with at least `min_count` occurrences (ties broken alphabetically); id 0 is padding,
id 1 is unknown. Sequences are cut to `max_length` tokens and right-padded with 0; the lengths
are `(X != 0).sum(1)` (`Dataset.lengths(split)`).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from modekit.data.dataset import Dataset, split_indices, tensors_from_parts
from modekit.data.files import cached, locate

PAD, UNK = 0, 1
TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
KIM = "text/kim2014/"
HOW = "copy the file into the data directory (GLUE for SST-2; Kim 2014's CNN_sentence repository for the sentence sets; see data/README.md)"

# name -> (files, reader, official splits {"train": [...], "val": [...], "test": [...]} by file, class names)
TEXTS = {
    "sst2": {
        "files": {"train": ["text/sst2/train.tsv", "text/sst2/dev.tsv"], "test": ["text/sst2/test.tsv"]},
        "reader": "glue",
        "classes": ["negative", "positive"],
    },
    "agnews": {"files": {"train": ["text/agnews/dev.tsv"], "test": ["text/agnews/test.tsv"]}, "reader": "agnews", "classes": None},
    "trec": {"files": {"train": [KIM + "TREC.train.all"], "test": [KIM + "TREC.test.all"]}, "reader": "kim", "classes": None},
    "sst5": {
        "files": {"train": [KIM + "stsa.fine.train"], "val": [KIM + "stsa.fine.dev"], "test": [KIM + "stsa.fine.test"]},
        "reader": "kim",
        "classes": ["very negative", "negative", "neutral", "positive", "very positive"],
    },
    "sst2_sentences": {
        "files": {"train": [KIM + "stsa.binary.train"], "val": [KIM + "stsa.binary.dev"], "test": [KIM + "stsa.binary.test"]},
        "reader": "kim",
        "classes": ["negative", "positive"],
    },
    "mr": {"files": {"all": [KIM + "rt-polarity.all"]}, "reader": "kim", "classes": ["negative", "positive"]},
    "subj": {"files": {"all": [KIM + "subj.all"]}, "reader": "kim", "classes": None},
    "cr": {"files": {"all": [KIM + "custrev.all"]}, "reader": "kim", "classes": ["negative", "positive"]},
    "mpqa": {"files": {"all": [KIM + "mpqa.all"]}, "reader": "kim", "classes": ["negative", "positive"]},
}
SOURCES = {
    "sst2": "GLUE SST-2 (Socher et al. 2013); test = the labelled GLUE dev split",
    "agnews": "AG News (Zhang et al. 2015); train = 10,000 rows sampled from the official train split",
}


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def build_vocabulary(texts, max_vocab: int = 20_000, min_count: int = 1) -> list[str]:
    """['<pad>', '<unk>', most frequent tokens...] from training texts only."""
    counts = Counter(token for text in texts for token in tokenize(text))
    kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return ["<pad>", "<unk>"] + kept[: max_vocab - 2]


def encode(texts, vocabulary: list[str], max_length: int) -> np.ndarray:
    index = {token: i for i, token in enumerate(vocabulary)}
    ids = np.zeros((len(texts), max_length), dtype=np.int64)
    for row, text in enumerate(texts):
        tokens = [index.get(t, UNK) for t in tokenize(text)][:max_length] or [UNK]
        ids[row, : len(tokens)] = tokens
    return ids


def _read(path, reader: str) -> tuple[list[str], list[str]]:
    if reader == "kim":  # '<label> <sentence>' per line
        with open(path, encoding="utf-8", errors="replace") as handle:
            pairs = [line.rstrip("\n").split(" ", 1) for line in handle if line.strip()]
        return [p[1] if len(p) > 1 else "" for p in pairs], [p[0] for p in pairs]
    if reader == "glue":  # header 'sentence<TAB>label'
        frame = pd.read_csv(path, sep="\t", quoting=3, dtype=str, keep_default_na=False)
        return frame["sentence"].tolist(), frame["label"].tolist()
    frame = pd.read_csv(path, sep="\t", header=None, quoting=3, dtype=str, keep_default_na=False)  # agnews: text, label
    return frame[0].tolist(), frame[1].tolist()


def load_text(name: str, seed: int = 0, max_vocab: int = 20_000, min_count: int = 1, max_length: int = 64, verify: bool = True) -> Dataset:
    spec = TEXTS[name]
    located = {part: [locate(p, HOW, verify) for p in paths] for part, paths in spec["files"].items()}
    hashes = [sha for part in located.values() for _, sha in part]

    def parse() -> dict[str, np.ndarray]:
        texts, labels, part_of = [], [], []
        for part, files in located.items():
            for path, _ in files:
                t, l = _read(path, spec["reader"])
                texts += t
                labels += l
                part_of += [part] * len(t)
        return {"texts": np.array(texts, dtype=str), "labels": np.array(labels, dtype=str), "part": np.array(part_of, dtype=str)}

    raw = cached(name, hashes, {}, parse)
    labels = raw["labels"]
    if spec["classes"]:
        class_names = spec["classes"]
        y = labels.astype(np.int64)
    else:
        class_names = sorted(set(labels.tolist()))
        y = np.array([class_names.index(l) for l in labels], dtype=np.int64)
    part = raw["part"]
    if "all" in located:  # no official split: stratified, seeded
        train_index, val_index, test_index = split_indices(y, seed)
    else:
        official_train = np.flatnonzero(part == "train")
        test_index = np.flatnonzero(part == "test")
        if "val" in located:
            train_index, val_index = official_train, np.flatnonzero(part == "val")
        else:
            inner_train, inner_val, _ = split_indices(y[official_train], seed, val_size=0.1, has_test=True)
            train_index, val_index = official_train[inner_train], official_train[inner_val]
    options = {"max_vocab": max_vocab, "min_count": min_count, "max_length": max_length, "seed": seed}
    texts = raw["texts"]

    def tokenised() -> dict[str, np.ndarray]:
        vocabulary = build_vocabulary(texts[train_index], max_vocab, min_count)
        return {"ids": encode(texts, vocabulary, max_length), "vocabulary": np.array(vocabulary, dtype=str)}

    encoded = cached(f"{name}-ids", hashes, options, tokenised)
    parts = {"train": train_index, "val": val_index, "test": test_index}
    return Dataset(
        name=name,
        domain="text",
        class_names=class_names,
        metadata={
            "seed": seed,
            "rows": len(y),
            "vocabulary": encoded["vocabulary"].tolist(),
            "max_length": max_length,
            "source": SOURCES.get(name, "Kim (2014) sentence-classification sets")
            + ": "
            + ", ".join(p for ps in spec["files"].values() for p in ps),
            "licence": "research use",
        },
        **tensors_from_parts(encoded["ids"], y, parts),
    )
