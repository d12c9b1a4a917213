"""Datasets: `load(name, seed=...)` returns a `Dataset` with train / val / test tensors.

- embedded (no files): `subtasks`, `subtasks2d`, `multiview`, `clustered_subtasks` (synthetic,
  hidden sub-task label, designed so the papers' phenomena can happen: docs/method.md §5), `digits`,
  `wine`, `breast_cancer` (scikit-learn), `digits8x8` (digits as 8x8 images), `synthtext`
  (synthetic two-topic text);
- real sets from the data directory (`$MODEKIT_DATA`, default ./data; see `catalogue()`):
  tabular (letter, satimage, shuttle, dna, adult, magic, ...), images (mnist, fashion_mnist),
  text (sst2, agnews, trec, mr, subj, cr, mpqa, sst5, sst2_sentences);
- composites: `"a+b"` joins same-domain sets with a sub-task label (e.g. `"mnist+fashion_mnist"`);
- users' own: `"csv:PATH"` with `target=COLUMN`, or `from_csv`, `from_dataframe`, `from_arrays`.
"""

from __future__ import annotations

import os

import pandas as pd

from modekit.data.composite import make_composite
from modekit.data.dataset import Dataset
from modekit.data.embedded import (
    load_breast_cancer,
    load_clustered_subtasks,
    load_digits,
    load_digits_images,
    load_multiview,
    load_subtasks,
    load_subtasks_2d,
    load_synthetic_text,
    load_wine,
)
from modekit.data.files import DataFileError, data_dir
from modekit.data.images import IMAGES, load_images
from modekit.data.synthetic import make_subtasks, make_subtasks_2d
from modekit.data.tabular import TABLES, load_table
from modekit.data.text import TEXTS, load_text
from modekit.data.user import from_arrays, from_csv, from_dataframe
from modekit.errors import UserError

EMBEDDED = {
    "subtasks": load_subtasks,
    "subtasks2d": load_subtasks_2d,
    "digits": load_digits,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits8x8": load_digits_images,
    "synthtext": load_synthetic_text,
    "multiview": load_multiview,
    "clustered_subtasks": load_clustered_subtasks,
}

# What each set holds once loaded (rows = all splits; features after one-hot encoding); pinned by
# tests/test_data_real.py against the files, and matching data/README.md.
CATALOGUE = {
    "subtasks": ("tabular", 4000, 5, 2),
    "subtasks2d": ("tabular", 4000, 2, 2),
    "digits": ("tabular", 1797, 64, 10),
    "wine": ("tabular", 178, 13, 3),
    "breast_cancer": ("tabular", 569, 30, 2),
    "digits8x8": ("image", 1797, 64, 10),
    "synthtext": ("text", 3000, 24, 2),
    "multiview": ("tabular", 4000, 5, 2),
    "clustered_subtasks": ("tabular", 2000, 6, 2),
    "letter": ("tabular", 20000, 16, 26),
    "satimage": ("tabular", 6435, 36, 6),
    "shuttle": ("tabular", 58000, 9, 7),
    "dna": ("tabular", 3186, 180, 3),
    "adult": ("tabular", 48842, 108, 2),
    "magic": ("tabular", 19020, 10, 2),
    "penbased": ("tabular", 10992, 16, 10),
    "optdigits": ("tabular", 5620, 64, 10),
    "spambase": ("tabular", 4597, 57, 2),
    "segment": ("tabular", 2310, 19, 7),
    "vehicle": ("tabular", 846, 18, 4),
    "phoneme": ("tabular", 5404, 5, 2),
    "ring": ("tabular", 7400, 20, 2),
    "twonorm": ("tabular", 7400, 20, 2),
    "texture": ("tabular", 5500, 40, 11),
    "splice": ("tabular", 3190, 286, 3),
    "vowel": ("tabular", 990, 10, 11),
    "glass": ("tabular", 214, 9, 6),
    "sonar": ("tabular", 208, 60, 2),
    "ionosphere": ("tabular", 351, 34, 2),
    "pima": ("tabular", 768, 8, 2),
    "mnist": ("image", 70000, 784, 10),
    "fashion_mnist": ("image", 70000, 784, 10),
    "sst2": ("text", 68221, 64, 2),
    "agnews": ("text", 17601, 64, 4),
    "trec": ("text", 5952, 64, 6),
    "sst5": ("text", 11855, 64, 5),
    "sst2_sentences": ("text", 9613, 64, 2),
    "mr": ("text", 10662, 64, 2),
    "subj": ("text", 10000, 64, 2),
    "cr": ("text", 3775, 64, 2),
    "mpqa": ("text", 10606, 64, 2),
}


def available() -> list[str]:
    return sorted(EMBEDDED) + sorted(TABLES) + sorted(IMAGES) + sorted(TEXTS)


def files_of(name: str) -> list[str]:
    if name in TABLES:
        return TABLES[name].files
    if name in IMAGES:
        return IMAGES[name]["files"]
    if name in TEXTS:
        return [p for paths in TEXTS[name]["files"].values() for p in paths]
    return []


def load(name: str, seed: int = 0, verify: bool = True, **options) -> Dataset:
    """Load a dataset by name; `seed` decides the split (and the samples of synthetic sets)."""
    if not isinstance(name, str) or not name:
        raise UserError(f"dataset={name!r} is not allowed: give a dataset name (see modekit.data.available())")
    if name.startswith("csv:"):
        if "target" not in options:
            raise UserError(f"dataset={name!r} needs target=COLUMN (CLI: --target COLUMN)")
        return from_csv(name[4:], seed=seed, **options)
    if "+" in name:
        composite = {k: options.pop(k) for k in ("label_space", "max_per_source") if k in options}
        sources = [load(part, seed=seed, verify=verify, **options) for part in name.split("+")]
        return make_composite(sources, seed=seed, name=name, **composite)
    if name in EMBEDDED:
        return EMBEDDED[name](seed=seed, **options)
    if name in TABLES:
        return load_table(name, seed=seed, verify=verify, **options)
    if name in IMAGES:
        return load_images(name, seed=seed, verify=verify, **options)
    if name in TEXTS:
        return load_text(name, seed=seed, verify=verify, **options)
    raise UserError(
        f"dataset={name!r} is not available: choose one of {', '.join(available())}, a composite 'a+b', or csv:PATH with a target column"
    )


def catalogue() -> pd.DataFrame:
    """Every dataset: domain, rows, features, classes, whether its files are present, where from."""
    rows = []
    for name in available():
        domain, n_rows, n_features, n_classes = CATALOGUE[name]
        files = files_of(name)
        present = all((data_dir() / f).is_file() for f in files)
        source = "embedded" if not files else os.path.commonpath(files)
        rows.append(
            {
                "name": name,
                "domain": domain,
                "rows": n_rows,
                "features": n_features,
                "classes": n_classes,
                "files_present": present,
                "source": source,
            }
        )
    return pd.DataFrame(rows)


__all__ = [
    "CATALOGUE",
    "DataFileError",
    "Dataset",
    "available",
    "catalogue",
    "from_arrays",
    "from_csv",
    "from_dataframe",
    "load",
    "make_composite",
    "make_subtasks",
    "make_subtasks_2d",
]
