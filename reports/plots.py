"""Plots for report.html, drawn with matplotlib (Agg, SVG backend) and inlined as SVG text.

matplotlib is imported inside the functions so that `audit --help` stays instant. Output is deterministic (fixed
hash salt, no date metadata, text kept as text) so that a report renders byte-identically from the same inputs.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np

from audit.findings import EstimateKind

COLOURS = {
    "baseline": "#5f6368",
    "treatment": "#1a73e8",
    "gain": "#188038",
    "loss": "#d93025",
    "none": "#5f6368",
    "reported": "#e37400",
    "extra": "#9334e6",
}

_RC = {
    "svg.hashsalt": "audit-report",
    "svg.fonttype": "none",
    "font.size": 9,
    "font.family": "DejaVu Sans",
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig, label: str, ident: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    s = buf.getvalue()
    s = s[s.index("<svg") :]  # drop the XML declaration and DOCTYPE: the SVG is inline in HTML
    s = re.sub(r"^<svg ", f'<svg id="{ident}" role="img" aria-label="{label}" ', s, count=1)
    return s


def _plain(text: str) -> str:
    """A label from user data as literal text: matplotlib would parse $…$ as mathtext (and fail on bad TeX)."""
    return str(text).replace("$", r"\$")


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return matplotlib, Figure


def forest_svg(
    rows: list[dict[str, Any]], reported: float | None, level: float, direction: str = "greater", narrow: bool = False
) -> str | None:
    """Forest plot: one row per cell (delta and CI), the zero line, and the reported delta.

    ``rows``: :class:`audit.findings.ForestEstimate` dumps (label, delta, ci_low, ci_high, claimed, kind); the items
    neither arm truncated (kind ``untruncated``) are drawn in their own colour. ``narrow``: the drawing for a phone
    (about 400 px): 4 inches wide with 10-point text, each row's label above its bar instead of beside it, so the
    bars keep the whole width and the text stays at its size when the page scales the SVG to the screen.
    """
    rows = [r for r in rows if r.get("delta") is not None]
    if not rows:
        return None
    matplotlib, Figure = _mpl()
    sign = 1 if direction == "greater" else -1
    rc = {**_RC, "font.size": 10} if narrow else _RC
    with matplotlib.rc_context(rc):
        if narrow:
            fig = Figure(figsize=(4.0, 0.52 * len(rows) + 1.25), layout="constrained")
        else:
            fig = Figure(figsize=(7.5, 0.32 * len(rows) + 1.3), layout="constrained")
        ax = fig.add_subplot()
        ys = np.arange(len(rows))[::-1]
        lows, highs = _forest_rows(ax, ys, rows, sign)
        ax.axvline(0.0, color="black", linewidth=1)
        handles = []
        if reported is not None and math.isfinite(reported):
            line = ax.axvline(
                reported,
                color=COLOURS["reported"],
                linestyle="--",
                linewidth=1.3,
                label=f"reported delta {reported:+.3f}",
            )
            handles.append(line)
            lows.append(reported)
            highs.append(reported)
        lo_all, hi_all = min(lows + [0.0]), max(highs + [0.0])
        pad = 0.08 * (hi_all - lo_all or 1.0)
        ax.set_xlim(lo_all - pad, hi_all + pad)
        labels = [("★ " if r.get("claimed") else "") + _plain(r["label"]) for r in rows]
        if narrow:
            _forest_labels_above(ax, ys, rows, labels, level)
        else:
            _forest_labels_beside(ax, ys, rows, labels, level)
        ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
        ax.set_axisbelow(True)
        if handles and narrow:
            fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=9)
        elif handles:
            ax.legend(handles=handles, loc="lower right", frameon=False, fontsize=8)
        svg = _svg(
            fig,
            "Forest plot of the delta with confidence intervals in every cell",
            "forest-plot-narrow" if narrow else "forest-plot",
        )
    return svg


def _forest_colour(r: dict[str, Any], sign: int) -> str:
    """A row's colour: untruncated items, a CI that excludes zero on the gain or the loss side, or neither."""
    lo, hi = r.get("ci_low"), r.get("ci_high")
    if r.get("kind") == EstimateKind.untruncated:
        return COLOURS["extra"]
    if lo is None or hi is None:
        return COLOURS["none"]
    if sign * lo > 0 and sign * hi > 0:
        return COLOURS["gain"]
    if sign * lo < 0 and sign * hi < 0:
        return COLOURS["loss"]
    return COLOURS["none"]


def _forest_rows(ax, ys: np.ndarray, rows: list[dict[str, Any]], sign: int) -> tuple[list[float], list[float]]:
    """Each row's CI bar and delta marker drawn; the lows and highs drawn, for the x range."""
    lows, highs = [], []
    for y, r in zip(ys, rows):
        d, lo, hi = r["delta"], r.get("ci_low"), r.get("ci_high")
        colour = _forest_colour(r, sign)
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color=colour, linewidth=2.2 if r.get("claimed") else 1.5, solid_capstyle="butt")
            ax.plot([lo, hi], [y, y], linestyle="none", marker="|", markersize=8, color=colour)
            lows.append(lo)
            highs.append(hi)
        ax.plot(
            [d],
            [y],
            marker="D" if r.get("claimed") else "o",
            markersize=7 if r.get("claimed") else 5,
            color=colour,
            linestyle="none",
        )
        lows.append(d)
        highs.append(d)
    return lows, highs


def _forest_labels_above(ax, ys: np.ndarray, rows: list[dict[str, Any]], labels: list[str], level: float) -> None:
    """The narrow drawing's labels: each above its bar, the bars keeping the whole width."""
    import textwrap

    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import blended_transform_factory

    where = blended_transform_factory(ax.transAxes, ax.transData)
    for y, r, text in zip(ys, rows, labels):
        ax.text(
            0.0,
            y + 0.2,
            textwrap.shorten(text, 48, placeholder="…"),
            transform=where,
            ha="left",
            va="bottom",
            fontsize=9.5,
            fontweight="bold" if r.get("claimed") else "normal",
            color="#1d1d1f",
        )
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_ylim(-0.6, len(rows) - 0.05)
    ax.set_xlabel(f"delta, with {level:.0%} CI")
    ax.xaxis.set_major_locator(MaxNLocator(5))


def _forest_labels_beside(ax, ys: np.ndarray, rows: list[dict[str, Any]], labels: list[str], level: float) -> None:
    """The wide drawing's labels: y tick labels beside the bars, the claimed cell's in bold."""
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    for tick, r in zip(ax.get_yticklabels(), rows):
        if r.get("claimed"):
            tick.set_fontweight("bold")
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"delta = treatment − baseline, with {level:.0%} CI")


def lengths_svg(values: dict[tuple[str, int], np.ndarray], budgets: list[int], unit: str, label: str) -> str | None:
    """Distribution of output lengths per arm, one panel per budget, with the cap marked."""
    if not values or not budgets:
        return None
    matplotlib, Figure = _mpl()
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.5, 1.5 * len(budgets) + 0.8), layout="constrained")
        axes = fig.subplots(len(budgets), 1, squeeze=False)[:, 0]
        for ax, b in zip(axes, budgets):
            xs = [values.get((arm, b), np.array([])) for arm in ("baseline", "treatment")]
            xs = [x[np.isfinite(x)] for x in xs]
            top = max([b * 1.05] + [float(x.max()) for x in xs if len(x)])
            bins = np.linspace(0, top, 41)
            for arm, x in zip(("baseline", "treatment"), xs):
                if len(x):
                    ax.hist(
                        x, bins=bins, histtype="step", linewidth=1.6, color=COLOURS[arm], label=f"{arm} (n={len(x)})"
                    )
            ax.axvline(b, color=COLOURS["loss"], linestyle="--", linewidth=1.2, label="cap (tokens)")
            ax.set_title(f"budget {b}: cap at {b} tokens", loc="left", fontsize=9)
            ax.set_ylabel("outputs")
        axes[-1].set_xlabel(f"output length ({label.split(' (')[0]})")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(
            handles,
            [lab.split(" (n=")[0] for lab in labels],
            loc="outside upper right",
            ncols=3,
            frameon=False,
            fontsize=8,
        )
        svg = _svg(fig, f"Distribution of output lengths in {unit} against the generation cap", "lengths-plot")
    return svg
