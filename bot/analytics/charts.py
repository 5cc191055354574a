"""PNG charts for the digests, drawn with matplotlib's object API (no pyplot: no global figure registry,
safe to call from worker threads, nothing to leak).

CSAT values handed to these functions must already have passed the anonymity gate
(:mod:`bot.analytics.privacy`); ``None`` is drawn as a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # harmless if already set; we never import pyplot anyway

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties, fontManager  # noqa: E402

from bot.analytics.fonts import cjk_font_path  # noqa: E402
from bot.analytics.points import WeekPoint  # noqa: E402,F401 - re-exported
from bot.i18n import Translator, translator  # noqa: E402

__all__ = ["WeekPoint", "font_family", "render_matrix_chart", "render_weekly_chart"]

_BAR_COLOR = "#4C78A8"
_LINE_COLOR = "#E45756"


@cache
def font_family() -> list[str]:
    """DejaVu Sans, then the installed CJK font (picked by file, see bot/analytics/fonts.py) for the glyphs
    DejaVu lacks. Without a CJK font matplotlib warns about each missing glyph (not hidden: the one
    warning at start, `fonts.warn_if_no_cjk_font`, says how to fix it)."""
    path = cjk_font_path()
    if path is None:
        return ["DejaVu Sans"]
    fontManager.addfont(str(path))
    return ["DejaVu Sans", FontProperties(fname=str(path)).get_name()]


def _new_figure(width_in: float, height_in: float, dpi: int = 100) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, format="png", facecolor="white")
    finally:
        fig.clear()
    return out


def _save_empty(fig: Figure, ax: Any, family: list[str], path: str | Path, t: Translator) -> Path:
    """A chart with nothing to draw says so instead of showing empty axes."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, t._("No requests in this period"), ha="center", va="center", fontsize=13, color="#666666",
            transform=ax.transAxes, fontfamily=family)
    return _save(fig, path)


def render_weekly_chart(weeks: Sequence[WeekPoint], *, title: str, path: str | Path,
                        t: Translator | None = None) -> Path:
    """Volume bars plus a CSAT % line (secondary axis, gaps for ``None``) as a ~1000x500 px PNG; axis labels,
    legend and notes in `t`'s language (the caller translates the title and week labels)."""
    t = t or translator("en")
    family = font_family()
    fig = _new_figure(10, 5)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=14, fontfamily=family, loc="left")
    if not weeks:
        return _save_empty(fig, ax, family, path, t)

    xs = list(range(len(weeks)))
    volumes = [max(0, int(w.volume)) for w in weeks]
    csat = [math.nan if w.csat is None else float(w.csat) for w in weeks]
    bars = ax.bar(xs, volumes, color=_BAR_COLOR, width=0.6, label=t._("Requests"), zorder=2)
    top = max(1, max(volumes))
    for x, volume in zip(xs, volumes, strict=True):
        # Counts sit at the foot of each bar so they never collide with the CSAT labels above.
        inside = volume >= 0.08 * top
        ax.annotate(
            str(volume),
            (x, 0),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold" if inside else "normal",
            color="white" if inside else "#333333",
            zorder=4,
        )
    ax.set_ylabel(t._("Requests"), fontfamily=family)
    ax.set_ylim(0, top * 1.15)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="y", color="#dddddd", zorder=0)
    ax.set_xticks(
        xs,
        [w.label for w in weeks],
        fontfamily=family,
        fontsize=10,
        rotation=30 if max(len(w.label) for w in weeks) > 8 else 0,
    )
    ax.set_xlim(-0.6, len(weeks) - 0.4)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    ax2 = ax.twinx()
    ax2.plot(xs, csat, color=_LINE_COLOR, marker="o", linewidth=2.2, label=t._("CSAT %"), zorder=3)
    for x, value in zip(xs, csat, strict=True):
        if not math.isnan(value):
            ax2.annotate(
                t.fmt_percent(value),
                (x, value),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=9,
                color=_LINE_COLOR,
                fontweight="bold",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            )
    ax2.set_ylim(0, 110)
    ax2.set_yticks(range(0, 101, 20))
    ax2.set_ylabel(t._("CSAT (% of scores 4–5)"), color=_LINE_COLOR, fontfamily=family)
    ax2.tick_params(axis="y", colors=_LINE_COLOR)
    ax2.spines["top"].set_visible(False)

    handles = [bars, *ax2.get_lines()[:1]]
    ax.legend(
        handles,
        [t._("Requests"), t._("CSAT %")],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        ncols=2,
        prop={"family": family, "size": 9},
    )
    if any(math.isnan(v) for v in csat):
        ax.set_xlabel(
            t._("CSAT gaps: no survey answers or not enough answers to show, to protect anonymity."),
            fontsize=8,
            color="#666666",
            loc="left",
            fontfamily=family,
        )
    return _save(fig, path)


def render_matrix_chart(
    departments: list[str], teams: list[str], counts: list[list[int]], *, title: str, path: str | Path,
    t: Translator | None = None,
) -> Path:
    """Heatmap of requests per department (rows) x team (columns), with the count in each cell."""
    if len(counts) != len(departments) or any(len(row) != len(teams) for row in counts):
        raise ValueError("counts must be a len(departments) x len(teams) matrix")
    t = t or translator("en")
    family = font_family()
    n_rows, n_cols = len(departments), len(teams)
    label_w = max((len(d) for d in departments), default=0)
    width = max(10.0, 2.0 + 0.09 * label_w + 0.42 * n_cols)
    height = max(5.0, 2.2 + 0.32 * n_rows + 0.07 * max((len(t) for t in teams), default=0))
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=14, fontfamily=family, loc="left")
    if n_rows == 0 or n_cols == 0:
        return _save_empty(fig, ax, family, path, t)

    peak = max(max(row) for row in counts)
    image = ax.imshow(counts, cmap="Blues", aspect="auto", vmin=0, vmax=max(1, peak), interpolation="nearest")
    fontsize = 9 if max(n_rows, n_cols) <= 20 else 7
    for r, row in enumerate(counts):
        for c, value in enumerate(row):
            if value:
                ax.text(
                    c,
                    r,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if value > 0.6 * peak else "#222222",
                )
    ax.set_xticks(
        range(n_cols),
        teams,
        rotation=45,
        ha="right",
        rotation_mode="anchor",
        fontsize=fontsize + 1,
        fontfamily=family,
    )
    ax.set_yticks(range(n_rows), departments, fontsize=fontsize + 1, fontfamily=family)
    ax.set_xlabel(t._("Team"), fontfamily=family)
    ax.set_ylabel(t._("Department"), fontfamily=family)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01)
    bar.set_label(t._("Requests"), fontfamily=family)
    return _save(fig, path)
