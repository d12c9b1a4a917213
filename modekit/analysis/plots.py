"""Seaborn figures for the notebooks. Each returns a matplotlib Figure with labelled axes and a
title that says what to see; `save(fig, out_dir, name)` writes it as PNG when a folder is given.

The kit's style (seaborn "whitegrid", "notebook" context) applies inside these functions only:
importing this module leaves the user's matplotlib settings alone."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from modekit.analysis.canvas import mark_cut_axis, styled, suptitle
from modekit.analysis.canvas import save as save  # the notebooks' plots.save
from modekit.analysis.stats import t_interval

# Error bars on every bar and point a verdict rests on: the verdicts' own 95% t interval over seeds
# (seaborn calls it with each group's values and draws the (low, high) it returns)
INTERVAL = t_interval
INTERVAL_TEXT = "mean, 95% t interval over seeds"


@styled
def learning_curves(history: pd.DataFrame, title: str = "Learning curves"):
    """Task loss, accuracy and MoDE's L_KD (logged for every model, trained on only when alpha > 0) by epoch."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    part = history[history.split != "test"]
    style = part.get("model")
    for ax, column, label in zip(
        axes,
        ("task_loss", "accuracy", "distillation_loss"),
        ("task loss (cross-entropy)", "accuracy", "L_KD between the experts"),
    ):
        sns.lineplot(data=part, x="epoch", y=column, hue="split", style=style, ax=ax, legend=ax is axes[-1])
        ax.set(ylabel=label)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)  # outside the axes: covers no curve
    suptitle(fig, title)
    fig.tight_layout()
    return fig


@styled
def gate_histograms(weights_by_model: dict[str, np.ndarray], title: str):
    """One panel per model: distribution of each expert's gate weight over samples."""
    fig, axes = plt.subplots(1, len(weights_by_model), figsize=(5 * len(weights_by_model), 3.5), squeeze=False)
    for ax, (label, weights) in zip(axes[0], weights_by_model.items()):
        frame = pd.DataFrame(weights, columns=[f"expert {i}" for i in range(weights.shape[1])]).melt(
            var_name="expert", value_name="gate weight"
        )
        last = ax is axes[0][-1]
        sns.histplot(
            data=frame, x="gate weight", hue="expert", bins=30, element="step", stat="density", common_norm=False, ax=ax, legend=last
        )
        ax.set(title=label, xlim=(0, 1))
        if last:  # one legend, outside the axes: it covers no bar
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    suptitle(fig, title)
    fig.tight_layout()
    return fig


@styled
def gradient_reach(reach: pd.DataFrame, title: str):
    """Per sub-task's expert: the share of its gradient from the other sub-task's samples, MoE vs MoDE
    (rows of probing.gradient_reach with `model` and `seed` columns), with the seeds' t interval."""
    frame = reach.melt(
        id_vars=["model", "seed", "sub-task"], value_vars=["other_share_task", "other_share_total"], var_name="gradient", value_name="share"
    )
    frame["gradient"] = frame.gradient.map({"other_share_task": "task gradient only", "other_share_total": "whole gradient"})
    frame["expert of"] = frame["sub-task"].map(lambda t: f"sub-task {'AB'[t]}")
    grid = sns.catplot(
        data=frame, x="expert of", y="share", hue="model", col="gradient", kind="bar", errorbar=INTERVAL, height=3.4, aspect=1.1
    )
    grid.set_axis_labels("", "share of the expert's gradient\nfrom the other sub-task")
    suptitle(grid.figure, title, y=1.04)
    sns.move_legend(grid, "upper left", bbox_to_anchor=(1.0, 0.9), frameon=False)
    return grid.figure


@styled
def decision_regions(grids: dict[str, tuple], X: np.ndarray, y: np.ndarray, title: str):
    """Per model: predicted class-1 probability (colour, with its bar) and which expert dominates
    (black contours), over the standardised inputs (the loaders standardise every feature)."""
    fig, axes = plt.subplots(1, len(grids), figsize=(5 * len(grids) + 1, 4.4), squeeze=False)
    for ax, (label, (xs, ys, probability, expert)) in zip(axes[0], grids.items()):
        filled = ax.contourf(xs, ys, probability, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.65)
        ax.contour(xs, ys, expert, levels=np.arange(expert.max() + 1) + 0.5, colors="k", linewidths=1.5)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", s=6, edgecolors="none", alpha=0.7)
        ax.set(
            title=f"{label}\n(black lines: expert borders)",
            xlabel="x0, routing cue (standardised)",
            ylabel="x1, rule feature (standardised)",
        )
    fig.colorbar(filled, ax=axes[0].tolist(), label="predicted probability of class 1", ticks=[0, 0.25, 0.5, 0.75, 1])
    suptitle(fig, title, y=1.02)
    return fig


@styled
def alpha_curves(table: pd.DataFrame, title: str, paper_alpha: tuple | None = None):
    """Accuracy and expert consistency against alpha (log axis; alpha = 0 drawn at the left edge)."""
    frame = table.copy()
    positive = frame.alpha[frame.alpha > 0]
    zero_at = positive.min() / 10 if len(positive) else 1e-4
    frame["alpha_plot"] = frame.alpha.where(frame.alpha > 0, zero_at)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(data=frame, x="alpha_plot", y="test_accuracy", errorbar=INTERVAL, marker="o", ax=axes[0])
    sns.lineplot(data=frame, x="alpha_plot", y="cosine_similarity", errorbar=INTERVAL, marker="o", color="C2", ax=axes[1])
    ticks = sorted(frame.alpha_plot.unique())
    for ax, label in zip(axes, (f"test accuracy\n({INTERVAL_TEXT})", f"expert cosine similarity\n({INTERVAL_TEXT})")):
        ax.set(xscale="log", xlabel="alpha (0 = plain MoE)", ylabel=label)
        ax.set_xticks(ticks, ["0" if t == zero_at else f"{t:g}" for t in ticks], rotation=45)  # a decade apart: room for each label
        ax.minorticks_off()
        if paper_alpha:
            ax.axvspan(
                min(paper_alpha) * 0.9,
                max(paper_alpha) * 1.1,
                color="orange",
                alpha=0.2,
                label="paper's alpha (its normalisation;\nper the project's summary, unverified)",
            )
    if paper_alpha:
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)  # outside the axes: covers no point
    suptitle(fig, title)
    fig.tight_layout()
    return fig


@styled
def probing_bars(probing: pd.DataFrame, title: str, reference: dict | None = None, x: str = "expert", source: str = "source not given"):
    """Own-domain vs cross-domain accuracy per expert (or per `x`, e.g. the sub-task whose expert it is),
    MoE vs MoDE, with the seeds' t interval; dashed lines: paper values, their `source` in the legend."""
    frame = probing.assign(kind=np.where(probing["own"], "own DS", "other DS"))
    grid = sns.catplot(data=frame, x=x, y="accuracy", hue="model", col="kind", kind="bar", errorbar=INTERVAL, height=3.6, aspect=1.2)
    low = round(max(0.0, frame.accuracy.min() - 0.1), 1)
    # the top: 1, or the highest interval's end where a t interval over seeds reaches past it (drawn, not clipped)
    high = max(1.0, *(INTERVAL(part)[1] for _, part in frame.groupby([x, "model", "kind"]).accuracy if len(part) > 1))
    grid.set(ylim=(low, high + 0.01))
    grid.set_axis_labels("expert of sub-task" if x == "sub-task" else x, f"accuracy ({INTERVAL_TEXT})")
    for ax in grid.axes.flat:
        mark_cut_axis(ax, low)
    if reference:  # the paper's numbers are own-DS accuracies: lines on that panel, named in its legend
        own = grid.axes_dict["own DS"]
        lines = [
            own.axhline(value, ls=style, color="dimgrey", lw=1, label=f"paper {label}: {value}")
            for (label, value), style in zip(reference.items(), itertools.cycle(["--", ":", "-.", (0, (5, 1, 1, 1))]))
        ]
        own.legend(handles=lines, loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncol=3, frameon=False,  # below the axes
                   title=f"the paper's numbers ({source}; the paper's own setting)", title_fontsize=7)  # fmt: skip
    suptitle(grid.figure, title, y=1.03)
    return grid.figure


@styled
def feature_importance(importance: pd.DataFrame, title: str):
    grid = sns.catplot(
        data=importance, x="feature", y="importance", hue="expert", col="model", kind="bar", errorbar=None, height=3.4, aspect=1.4
    )
    grid.set_axis_labels("feature", "accuracy drop when shuffled")
    suptitle(grid.figure, title, y=1.03)
    return grid.figure


@styled
def spectra(spectra_table: pd.DataFrame, title: str, default_k: dict | None = None):
    """Per expert matrix (columns w1, w2): the singular values (top, log scale) and the relative
    error ||W - W_K|| / ||W|| of the best rank-K approximation, sqrt(1 - energy share of the top K)
    (bottom; Eckart-Young). `default_k` {matrix: K} draws SVD gathering's default K as a dotted line."""
    table = spectra_table.assign(rank_k_error=np.sqrt(np.clip(1 - spectra_table.cumulative_energy, 0, None)))
    matrices = list(dict.fromkeys(table.matrix))
    style = "layer" if table.layer.nunique() > 1 else None
    fig, axes = plt.subplots(2, len(matrices), figsize=(4.6 * len(matrices) + 1.6, 6.2), squeeze=False)
    for column, matrix in enumerate(matrices):
        part = table[table.matrix == matrix]
        for row, (y, label) in enumerate((("singular_value", "singular value (log)"), ("rank_k_error", "relative error of rank K"))):
            ax = axes[row, column]
            sns.lineplot(data=part, x="index", y=y, hue="expert", style=style, marker="o", palette="deep", ax=ax, legend=row == column == 0)
            if default_k and matrix in default_k:
                ax.axvline(default_k[matrix], color="k", ls=":", lw=1, label=f"default K = {default_k[matrix]}")
            ax.set(xlabel="K (singular value index)", ylabel=label, xticks=sorted(part["index"].unique()))
            ax.set_title(f"{matrix}, {row and 'rank-K error' or 'singular values'}")
        axes[0, column].set_yscale("log")
        axes[0, column].yaxis.set_major_formatter(mticker.LogFormatter(labelOnlyBase=False))
        axes[0, column].yaxis.set_minor_formatter(mticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
        axes[1, column].set_ylim(0, 1.02)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if axes[0, 0].get_legend():
        axes[0, 0].get_legend().remove()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.92), frameon=False, title="expert / K")  # outside the axes
    suptitle(fig, title)
    fig.tight_layout()
    return fig


@styled
def gathering(results: pd.DataFrame, title: str):
    """Per-seed OneS rows (run_ones, one teacher): test accuracy of every student before and after
    KD, bars = mean over seeds with the 95% t interval; the MoE teacher and the dense model from
    scratch as lines at their means with their intervals shaded. A cut y axis is marked."""
    frame = results[results.stage.isin(["before KD", "after KD"])]
    fig, ax = plt.subplots(figsize=(9.5, 4.0))
    sns.barplot(
        data=frame,
        x="student",
        y="test_accuracy",
        hue="stage",
        hue_order=["before KD", "after KD"],
        errorbar=INTERVAL,
        capsize=0.15,
        err_kws={"linewidth": 1.2},
        ax=ax,
    )
    lows = [frame.groupby(["student", "stage"]).test_accuracy.apply(lambda v: INTERVAL(v)[0]).min()]
    for student, label, style, colour in (
        ("teacher", "MoE teacher", "-", "tab:green"),
        ("dense from scratch", "dense from scratch", "--", "tab:red"),
    ):
        values = results[(results.student == student) & (results.stage == "trained")].test_accuracy
        if len(values):
            low, high = INTERVAL(values)
            ax.axhline(values.mean(), color=colour, ls=style, lw=1.2, label=f"{label} (mean)")
            ax.axhspan(low, high, color=colour, alpha=0.12, lw=0, label=f"{label}, 95% interval")
            lows.append(low)
    ax.set(xlabel="student", ylabel=f"test accuracy\n({INTERVAL_TEXT})")
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right", rotation_mode="anchor")
    low = float(np.floor(max(0.0, np.nanmin(lows) - 0.05) * 20) / 20)
    ax.set_ylim(low, min(1.0, ax.get_ylim()[1]))
    mark_cut_axis(ax, low)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # outside the axes: covers no bar
    ax.set_title(title)
    fig.tight_layout()
    return fig


@styled
def paired_gains(gains: pd.DataFrame, title: str):
    """Per dataset: the paired test-accuracy gain MoDE - MoE over seeds (points: seeds; bars: mean and
    the verdicts' 95% t interval): settings fixed in advance (the primary verdicts) and tuned on validation."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    sns.stripplot(data=gains, x="dataset", y="gain", hue="comparison", dodge=True, alpha=0.45, size=4, ax=ax, legend=False)
    sns.pointplot(
        data=gains,
        x="dataset",
        y="gain",
        hue="comparison",
        dodge=0.4,
        errorbar=INTERVAL,
        linestyle="none",
        markers="D",
        capsize=0.08,
        ax=ax,
    )
    ax.axhline(0.0, color="k", lw=1)
    ax.set(xlabel="", ylabel="MoDE - MoE test accuracy\n(seeds; mean, 95% t interval)")
    ax.legend(
        title="settings of both models", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
    )  # outside the axes: covers no point
    ax.set_title(title)
    fig.tight_layout()
    return fig


VERDICT_COLOURS = {"reproduced": "#2a7f3f", "contradicted": "#b2182b", "equivalent": "#5e60ce", "inconclusive": "#888888",
                   "dispatch overhead": "#e08214", "not run": "#cccccc"}  # fmt: skip


@styled
def forest(table: pd.DataFrame, title: str):
    """Every claim's effect and 95% interval (claims.forest_table: in its units, rows in the scorecard's
    order, per-set rows indented), coloured by verdict, against its threshold (black tick) and its
    region of practical equivalence (grey band); one panel per unit (accuracy points, speed ratio)."""
    panels = list(dict.fromkeys(table.units))
    sizes = [int((table.units == u).sum()) for u in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.32 * sum(sizes) + 1.2 * len(panels)), height_ratios=sizes, squeeze=False)
    for ax, units in zip(axes[:, 0], panels):
        part = table[table.units == units].reset_index(drop=True)
        rows = np.arange(len(part))[::-1]
        for y, row in zip(rows, part.itertuples()):
            if row.rope == row.rope:
                ax.fill_betweenx([y - 0.4, y + 0.4], row.threshold - row.rope, row.threshold + row.rope, color="0.88", lw=0)
            ax.plot([row.threshold] * 2, [y - 0.4, y + 0.4], color="k", lw=1.2)
            colour = VERDICT_COLOURS.get(row.verdict, "k")
            ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, lw=2.2)
            ax.plot(row.effect, y, "o" if row.scope == "all" else "s", color=colour, ms=6 if row.scope == "all" else 4)
        ax.set_yticks(rows, part.label)
        named = {"points": "effect, accuracy points", "x": "speedup, x (student / teacher throughput)"}
        named = named.get(units, f"effect, {units.strip('()')}")
        ax.set_xlabel(f"{named}; 95% interval")
        ax.grid(axis="y", visible=False)
    handles = [plt.Line2D([], [], color=c, lw=2.2, marker="o", label=v) for v, c in VERDICT_COLOURS.items() if v in set(table.verdict)]
    handles.append(plt.Line2D([], [], color="k", lw=1.2, label="threshold (grey: equivalence region)"))
    axes[0, 0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=3, frameon=False, fontsize=9)
    suptitle(fig, title, y=1.0, fontsize=11)
    fig.tight_layout()
    return fig
