"""The kit's figure style and layout, shared by every figure of `plots`: the seaborn style applied
inside a figure function only, a title wrapped to stay inside the image, y labels fitted to their
axes, a cut axis marked, and the PNG written."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns


def styled(figure_function):
    """Draw inside the kit's seaborn style and context, restoring the user's rcParams after."""

    @functools.wraps(figure_function)
    def draw(*args, **kwargs):
        # the backend may switch interactive mode on while the first figure is drawn (Jupyter's inline
        # backend does): restoring the rcParams would switch it off again, and no later figure would show
        interactive = plt.isinteractive()
        try:
            with plt.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
                sns.set_palette("deep")
                try:
                    return figure_function(*args, **kwargs)
                finally:
                    interactive = plt.isinteractive()
        finally:
            plt.interactive(interactive)

    return draw


def suptitle(fig, title: str, y: float = 0.98, **kwargs) -> None:
    """The figure's title, wrapped to the figure's width so that it stays inside the image; each
    line past the first raises it by a line's height and spacing (about 0.3 inch at the title's
    size), clear of the axes' titles."""
    wrapped = textwrap.fill(title, width=int(15 * fig.get_figwidth()))
    fig.suptitle(wrapped, y=y + 0.3 * wrapped.count("\n") / fig.get_figheight(), **kwargs)


def fit_labels(fig) -> None:
    """Wrap a y label that runs past its axes' height (into the figure's title) onto as many lines
    as it needs to fit; a label that fits is left as it is."""
    get_renderer = getattr(fig.canvas, "get_renderer", None)  # Agg-based canvases (inline, PNG); a vector one: left as is
    if get_renderer is None:
        return
    renderer = get_renderer()
    for ax in fig.axes:
        label = ax.yaxis.label
        room, need = ax.get_window_extent(renderer).height, label.get_window_extent(renderer).height
        if label.get_text() and need > room:
            longest = max(len(part) for part in label.get_text().split("\n"))
            width = max(12, int(longest * room / need))
            ax.set_ylabel("\n".join(textwrap.fill(part, width) for part in label.get_text().split("\n")))


def save(fig, out_dir, name: str):
    """Write `name`.png into out_dir (if given), its y labels fitted to their axes, and return the figure."""
    fit_labels(fig)
    if out_dir:
        path = Path(out_dir) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def mark_cut_axis(ax, low: float | None = None) -> None:
    """Mark a y axis that does not start at 0: two slanted strokes on its foot and the start in its label."""
    low = ax.get_ylim()[0] if low is None else low
    if low <= 0:
        return
    ax.set_ylim(bottom=low)
    stroke = dict(transform=ax.transAxes, color="k", clip_on=False, lw=1)
    for dy in (-0.012, 0.012):
        ax.plot((-0.015, 0.015), (0.02 + dy - 0.01, 0.02 + dy + 0.01), **stroke)
    ax.set_ylabel(f"{ax.get_ylabel()}\n(axis cut: starts at {low:g})")
