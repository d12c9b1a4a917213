"""Sub-task composites: one classification dataset made of several sources, with a known sub-task
label per sample (for expert probing and gate recognition).

Features: sources of the same shape are stacked as they are (MNIST digits vs Fashion-MNIST items);
tabular sources of different widths are zero-padded to the widest (they share feature positions,
so the gate must tell the sub-tasks apart from the values). Labels:
    label_space="disjoint": source s's class c becomes offset_s + c ("mnist:3", "fashion_mnist:Dress")
    label_space="shared":   classes keep their index (source s's class c is class c; names joined)
"""

from __future__ import annotations

import numpy as np
import torch

from modekit.data.dataset import SPLITS, Dataset
from modekit.errors import UserError

LABEL_SPACES = ("disjoint", "shared")


def make_composite(
    sources: list[Dataset], label_space: str = "disjoint", max_per_source: int | None = None, seed: int = 0, name: str | None = None
) -> Dataset:
    if len(sources) < 2:
        raise UserError(f"sources has {len(sources)} dataset(s): a composite needs at least 2")
    if label_space not in LABEL_SPACES:
        raise UserError(f"label_space={label_space!r} is not allowed: label_space must be 'disjoint' or 'shared'")
    domains = {s.domain for s in sources}
    if len(domains) > 1:
        raise UserError(f"sources mix domains {sorted(domains)}: a composite needs sources of one domain")
    shapes = {tuple(s.X_train.shape[1:]) for s in sources}
    if len(shapes) > 1 and any(len(shape) != 1 for shape in shapes):
        raise UserError(f"sources have feature shapes {sorted(shapes)}: only flat (tabular) sources can be padded to one width")
    width = max(s.X_train.shape[1] for s in sources) if len(shapes) > 1 else None
    offsets = np.cumsum([0] + [s.n_classes for s in sources[:-1]]) if label_space == "disjoint" else [0] * len(sources)
    generator = torch.Generator().manual_seed(seed)
    tensors, subtask = {}, {}
    for split in SPLITS:
        xs, ys, ss = [], [], []
        for index, (source, offset) in enumerate(zip(sources, offsets)):
            X, y = source.split(split)
            if max_per_source and len(y) > max_per_source:
                keep = torch.randperm(len(y), generator=generator)[:max_per_source].sort().values
                X, y = X[keep], y[keep]
            if width is not None and X.shape[1] < width:
                X = torch.nn.functional.pad(X, (0, width - X.shape[1]))
            xs.append(X)
            ys.append(y + int(offset))
            ss.append(torch.full_like(y, index))
        tensors[f"X_{split}"], tensors[f"y_{split}"] = torch.cat(xs), torch.cat(ys)
        subtask[split] = torch.cat(ss)
    if label_space == "disjoint":
        class_names = [f"{s.name}:{c}" for s in sources for c in s.class_names]
    else:
        n_classes = max(s.n_classes for s in sources)
        class_names = [" | ".join(s.class_names[c] if c < s.n_classes else "-" for s in sources) for c in range(n_classes)]
    return Dataset(
        name=name or "+".join(s.name for s in sources),
        domain=sources[0].domain,
        class_names=class_names,
        subtask=subtask,
        subtask_names=[s.name for s in sources],
        metadata={
            "sources": [s.name for s in sources],
            "label_space": label_space,
            "source": "composite of " + ", ".join(s.name for s in sources),
            "licence": "as its sources",
        },
        **tensors,
    )
