"""The report's figures (matplotlib, Agg, PNG), each readable on its own: titled, labelled axes, no overlaps.

Point labels are placed by a small greedy search in display space (right of the point first, then above,
below, left, then further out), which is enough for the tens of models a zoo has and avoids a dependency.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on clusters or CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from imagenot import escape, safepath  # noqa: E402
from imagenot.analysis import stats  # noqa: E402
from imagenot.analysis.comparison import Analysis, Comparison  # noqa: E402
from imagenot.fileio import atomic_path  # noqa: E402

log = logging.getLogger(__name__)

KEPT = "#3b6ea8"
FLIP = "#d1495b"
REF = "#3b6ea8"
CON = "#edae49"
FIT = "#2e2e2e"
STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
}


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 3})
    plt.close(fig)
    return path


def _place_labels(ax: Axes, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str],
                  xerr: Sequence[float] | None = None, yerr: Sequence[float] | None = None,
                  lines: Sequence[tuple[float, float]] = (), fontsize: float = 8.5) -> None:
    """Put each label next to its point where it overlaps no other label, point or error bar.

    Error bars are obstacles as thin lines, not as the boxes they span, so a label can sit in the quadrant
    between a point's bars instead of far beyond their ends. `lines` are (slope, intercept) in data
    coordinates (fit, y = x) that a label should not cross either.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    n = len(xs)
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    ex = np.nan_to_num(np.asarray(xerr, dtype=float)) if xerr is not None else np.zeros(n)
    ey = np.nan_to_num(np.asarray(yerr, dtype=float)) if yerr is not None else np.zeros(n)
    lo = ax.transData.transform(np.column_stack([x - ex, y - ey]))
    hi = ax.transData.transform(np.column_stack([x + ex, y + ey]))
    centres = ax.transData.transform(np.column_stack([x, y])) if n else np.zeros((0, 2))
    pad, thin = 5.0, 1.5  # pixels around a marker, half-width of a bar
    obstacles = []
    for i in range(n):
        cx, cy = centres[i]
        obstacles.append(Bbox([[cx - pad, cy - pad], [cx + pad, cy + pad]]))
        if ex[i] > 0:
            obstacles.append(Bbox([[lo[i, 0], cy - thin], [hi[i, 0], cy + thin]]))
        if ey[i] > 0:
            obstacles.append(Bbox([[cx - thin, lo[i, 1]], [cx + thin, hi[i, 1]]]))
    taken: list[Bbox] = []
    axes_box = ax.get_window_extent(renderer)
    directions = [(1, 1, "left", "bottom"), (1, -1, "left", "top"), (-1, 1, "right", "bottom"),
                  (-1, -1, "right", "top"), (1, 0, "left", "center"), (-1, 0, "right", "center"),
                  (0, 1, "center", "bottom"), (0, -1, "center", "top")]
    for i in np.argsort(-y):
        best: tuple[float, Any, Bbox] | None = None
        for ring, extra in enumerate((4.0, 14.0, 28.0)):
            for k, (sx, sy, ha, va) in enumerate(directions):
                dx, dy = sx * extra, sy * extra
                leader = {"arrowprops": {"arrowstyle": "-", "color": "#9a9a9a", "linewidth": 0.6,
                                         "shrinkA": 0, "shrinkB": 3}} if ring else {}
                text = ax.annotate(escape.mpl(labels[i]), (x[i], y[i]), xytext=(dx, dy), textcoords="offset points",
                                   ha=ha, va=va, fontsize=fontsize, color="#222222", zorder=4, **leader)
                box = text.get_window_extent(renderer)
                score = 4.0 * sum(box.overlaps(o) for o in taken) + 4.0 * sum(box.overlaps(o) for o in obstacles)
                score += 1.0 * sum(_crosses(ax, box, a, b) for a, b in lines)
                # a label nearer to another point than to its own reads as that point's label
                dist = _box_distance(box, centres)
                if n > 1 and np.min(np.delete(dist, i)) < dist[i] + 4.0:
                    score += 3.0
                inside = axes_box.contains(box.x0, box.y0) and axes_box.contains(box.x1, box.y1)
                score += (0 if inside else 6.0) + 0.4 * ring + 0.01 * k
                if best is None or score < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (score, text, box)
                else:
                    text.remove()
            if best is not None and best[0] < 1.0:
                break
        assert best is not None
        taken.append(best[2])


def _box_distance(box: Bbox, points: np.ndarray) -> np.ndarray:
    """Display-space distance from each point to the nearest edge of a box (0 inside it)."""
    dx = np.maximum.reduce([box.x0 - points[:, 0], np.zeros(len(points)), points[:, 0] - box.x1])
    dy = np.maximum.reduce([box.y0 - points[:, 1], np.zeros(len(points)), points[:, 1] - box.y1])
    return np.hypot(dx, dy)


def _crosses(ax: Axes, box: Bbox, slope: float, intercept: float) -> bool:
    """Whether the line y = slope * x + intercept (data coordinates) passes through a display-space box."""
    (x0, y0), (x1, y1) = ax.transData.inverted().transform([[box.x0, box.y0], [box.x1, box.y1]])
    ya, yb = slope * x0 + intercept, slope * x1 + intercept
    return bool(max(ya, yb) >= min(y0, y1) and min(ya, yb) <= max(y0, y1))


def _axis_label(comp: Comparison, side: str) -> str:
    name = comp.x_name if side == "x" else comp.y_name
    scale = comp.x_scale if side == "x" else comp.y_scale
    if "%" in name or "ratio" in name.lower() or "top-1" in name.lower():
        return name
    return f"{name} ({'ratio' if scale == 'ratio' else 'top-1 %'})"


def _intervals(comp: Comparison, side: str) -> tuple[np.ndarray, str] | None:
    """(2, n) lower/upper distances of each model's interval for errorbar, and what they are; None if absent."""
    ev = comp.evidence_x if side == "x" else comp.evidence_y
    if ev is None:
        return None
    lows, highs, methods = [], [], set()
    values = comp.means(side)
    for m, v in zip(comp.models, values):
        acc = ev.accuracy(m)
        if acc is None or not np.isfinite(acc.ci_low):
            return None
        lows.append(v - acc.ci_low)
        highs.append(acc.ci_high - v)
        methods.add(acc.method)
    what = "Clopper-Pearson" if all(m.startswith("clopper") for m in methods) else "bootstrap / Clopper-Pearson"
    return np.maximum(np.array([lows, highs]), 0.0), what


def fit_band(x: np.ndarray, y: np.ndarray, grid: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise confidence band of the least-squares line (the mean of y at each x), t-distributed."""
    from scipy import stats as sps

    n = x.size
    fit = sps.linregress(x, y)
    resid = y - (fit.slope * x + fit.intercept)
    s = np.sqrt(np.sum(resid ** 2) / (n - 2)) if n > 2 else np.nan
    sxx = np.sum((x - x.mean()) ** 2)
    se = s * np.sqrt(1.0 / n + (grid - x.mean()) ** 2 / sxx)
    t = sps.t.ppf(0.5 + confidence / 2, n - 2)
    mid = fit.slope * grid + fit.intercept
    return mid - t * se, mid + t * se


def _bar_extent(values: np.ndarray, err: np.ndarray | None) -> tuple[float, float]:
    if err is None:
        return float(values.min()), float(values.max())
    e = np.nan_to_num(np.atleast_2d(err))
    low = e[0] if e.shape[0] == 2 else e[0]
    high = e[1] if e.shape[0] == 2 else e[0]
    return float((values - low).min()), float((values + high).max())


@dataclasses.dataclass
class _Points:
    """What the scatter shows: one point per model, its error bars (None: none), their legend and axes."""

    x: np.ndarray
    y: np.ndarray
    xerr: np.ndarray | None
    yerr: np.ndarray | None
    err_label: str
    xlabel: str
    ylabel: str
    use_ratio: bool


def scatter(comp: Comparison, path: Path, title: str | None = None, baseline: str | None = None,
            confidence: float = 0.95) -> Path | None:
    """Contrast vs reference (or contrast-pretrained vs reference-pretrained) with fit line, band and y = x.

    Error bars are each model's interval on each axis: Clopper-Pearson (or the image bootstrap of a seed mean)
    when predictions or validation sizes are known, else the seed standard deviation. When one side is
    already a ratio to the baseline (a paper's figure), both sides are shown as ratios so that y = x means
    'the same relative improvement'.
    """
    if comp.n == 0:
        return None
    pts = _ratio_points(comp) if comp.primary_fit == "ratio" and comp.relative is not None else _accuracy_points(
        comp, confidence)
    fit = comp.fits.get("ratio" if pts.use_ratio else "raw")
    identity = comp.x_scale == comp.y_scale or pts.use_ratio
    with plt.rc_context(STYLE):
        grow = max(1.0, (comp.n / 15) ** 0.5)  # more room for labels in a large zoo
        fig, ax = plt.subplots(figsize=(7.2 * grow, 5.4 * grow))
        _draw_points(ax, comp, pts)
        (lo_x, hi_x), (lo_y, hi_y) = _view(pts)
        grid = np.linspace(lo_x, hi_x, 80)
        if fit:
            _draw_fit(ax, fit, pts, grid, comp.n, confidence)
        ax.set_xlim(lo_x, hi_x)
        ax.set_ylim(lo_y, hi_y)
        if identity:
            _draw_identity(ax, grid, (lo_x, hi_x), (lo_y, hi_y))
        ax.set_xlabel(escape.mpl(pts.xlabel))
        ax.set_ylabel(escape.mpl(pts.ylabel))
        default = (f"Transfer to {comp.target}" if comp.kind == "transfer"
                   else f"{comp.y_name} vs {comp.x_name}")
        ax.set_title(escape.mpl(title or default), loc="left")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        lines = [(fit["slope"], fit["intercept"])] if fit else []
        if identity:
            lines.append((1.0, 0.0))
        _place_labels(ax, list(pts.x), list(pts.y), comp.models, _half(pts.xerr), _half(pts.yerr), lines)
        return _save(fig, path)


def _ratio_points(comp: Comparison) -> _Points:
    """Both sides as ratios to the baseline (no error bars)."""
    assert comp.relative is not None
    rel = comp.relative
    ylabel = f"{comp.y_name.replace(' (%)', '')}: ratio to {rel['baseline']}"
    return _Points(x=np.array([rel["x"][m] for m in comp.models]), y=np.array([rel["y"][m] for m in comp.models]),
                   xerr=None, yerr=None, err_label="",
                   xlabel=f"{comp.x_name.replace(' (%)', '')}: ratio to {rel['baseline']}",
                   ylabel=comp.y_name if "ratio" in comp.y_name.lower() else ylabel, use_ratio=True)


def _accuracy_points(comp: Comparison, confidence: float) -> _Points:
    """Accuracies with each model's interval on each axis, else its seed spread, else no bars."""
    ix, iy = _intervals(comp, "x"), _intervals(comp, "y")
    err_label = ""
    if ix is not None or iy is not None:
        xerr = ix[0] if ix else None
        yerr = iy[0] if iy else None
        err_label = f"{int(round(confidence * 100))}% interval ({(ix or iy)[1]})"  # type: ignore[index]
    else:
        xerr = np.array([comp.x[m]["sd"] for m in comp.models])
        yerr = np.array([comp.y[m]["sd"] for m in comp.models])
        if not (np.any(np.isfinite(xerr)) or np.any(np.isfinite(yerr))):
            xerr = yerr = None
        else:
            err_label = "± seed sd"
    return _Points(x=comp.means("x"), y=comp.means("y"), xerr=xerr, yerr=yerr, err_label=err_label,
                   xlabel=_axis_label(comp, "x"), ylabel=_axis_label(comp, "y"), use_ratio=False)


def _draw_points(ax: Axes, comp: Comparison, pts: _Points) -> None:
    """Error bars, then the points (red: models in a flipped pair)."""
    if pts.xerr is not None or pts.yerr is not None:
        ax.errorbar(pts.x, pts.y, xerr=None if pts.xerr is None else np.nan_to_num(pts.xerr),
                    yerr=None if pts.yerr is None else np.nan_to_num(pts.yerr), fmt="none", ecolor="#9aa9bd",
                    elinewidth=1, capsize=2, zorder=2, label=escape.mpl(pts.err_label))
    flipped = {f["better_on_x"] for f in (comp.order or {}).get("flips", [])}
    flipped |= {f["better_on_y"] for f in (comp.order or {}).get("flips", [])}
    colours = [FLIP if m in flipped else KEPT for m in comp.models]
    ax.scatter(pts.x, pts.y, s=46, color=colours, edgecolor="white", linewidth=0.8, zorder=3,
               label="model (red: in a flipped pair)" if flipped else "model")


def _view(pts: _Points) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits around the points and their bars, with room for labels on the right."""
    x_lo, x_hi = _bar_extent(pts.x, pts.xerr)
    y_lo, y_hi = _bar_extent(pts.y, pts.yerr)
    pad_x = (x_hi - x_lo) * 0.08 or 1.0
    pad_y = (y_hi - y_lo) * 0.08 or 1.0
    return (x_lo - pad_x, x_hi + pad_x * 2.5), (y_lo - pad_y, y_hi + pad_y)


def _draw_fit(ax: Axes, fit: dict[str, float], pts: _Points, grid: np.ndarray, n: int, confidence: float) -> None:
    """The fitted line, and its confidence band from four models on."""
    ax.plot(grid, fit["slope"] * grid + fit["intercept"], color=FIT, linewidth=1.4, zorder=1,
            label=f"fit: slope {fit['slope']:.3g}, R² = {fit['r2']:.3f}")
    if n >= 4:
        band_lo, band_hi = fit_band(pts.x, pts.y, grid, confidence)
        ax.fill_between(grid, band_lo, band_hi, color=FIT, alpha=0.09, linewidth=0, zorder=0,
                        label=f"{int(round(confidence * 100))}% band of the fit")


def _draw_identity(ax: Axes, grid: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """y = x where it is in view, else a note saying on which side of the view it lies."""
    (lo_x, hi_x), (lo_y, hi_y) = xlim, ylim
    in_view = (grid >= lo_y) & (grid <= hi_y)
    if in_view.any():
        ax.plot(grid, grid, color="#8c8c8c", linestyle="--", linewidth=1, zorder=1, label="y = x")
    else:
        side = "below" if lo_y > hi_x else "above"
        ax.text(0.99, 0.01, f"y = x lies {side} this view: every model scores "
                f"{'higher' if side == 'below' else 'lower'} on the y axis than on the x axis",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="#6f6f6f")
    ax.set_xlim(lo_x, hi_x)
    ax.set_ylim(lo_y, hi_y)


def _half(err: np.ndarray | None) -> np.ndarray | None:
    """Symmetric clearance for labels from possibly asymmetric error bars."""
    if err is None:
        return None
    e = np.atleast_2d(np.nan_to_num(np.asarray(err, dtype=float)))
    return e.max(axis=0)


def scatter_logit(comp: Comparison, path: Path, confidence: float = 0.95) -> Path | None:
    """The same scatter on logit axes, with the logit-scale fit: the scale on which accuracy lines are
    straight in 'accuracy on the line' studies (Miller et al. 2021). Only for accuracies, not ratios."""
    if comp.n < 2 or comp.x_scale == "ratio" or comp.y_scale == "ratio":
        return None
    x, y = comp.means("x") / 100.0, comp.means("y") / 100.0
    lo_c, hi_c = stats.CLIP, 1 - stats.CLIP
    ix, iy = _intervals(comp, "x"), _intervals(comp, "y")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.2, 5.4))
        xe = ix[0] / 100.0 if ix else None
        ye = iy[0] / 100.0 if iy else None
        if xe is not None or ye is not None:
            ax.errorbar(x, y, xerr=xe, yerr=ye, fmt="none", ecolor="#9aa9bd", elinewidth=1, capsize=2, zorder=2,
                        label=f"{int(round(confidence * 100))}% interval")
        ax.scatter(x, y, s=46, color=KEPT, edgecolor="white", linewidth=0.8, zorder=3, label="model")
        ax.set_xscale("logit")
        ax.set_yscale("logit")
        x_lo, x_hi = _bar_extent(x, xe)
        y_lo, y_hi = _bar_extent(y, ye)
        lx = stats.transform(np.clip([x_lo, x_hi], lo_c, hi_c), "logit")
        ly = stats.transform(np.clip([y_lo, y_hi], lo_c, hi_c), "logit")
        px, py = (lx[1] - lx[0]) * 0.1 or 0.5, (ly[1] - ly[0]) * 0.1 or 0.5

        def expit(v: np.ndarray) -> np.ndarray:
            return 1.0 / (1.0 + np.exp(-v))

        ax.set_xlim(*expit(np.array([lx[0] - px, lx[1] + px * 2.5])))
        ax.set_ylim(*expit(np.array([ly[0] - py, ly[1] + py])))
        fit = comp.fits.get("logit")
        if fit:
            grid = np.linspace(lx[0] - px, lx[1] + px * 2.5, 80)
            ax.plot(expit(grid), expit(fit["slope"] * grid + fit["intercept"]), color=FIT, linewidth=1.4,
                    zorder=1, label=f"logit fit: slope {fit['slope']:.3g}, R² = {fit['r2']:.3f}")
        from matplotlib.ticker import FuncFormatter

        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v * 100:.3g}%"))
            axis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
        ax.set_xlabel(escape.mpl(_axis_label(comp, "x") + ", logit axis"))
        ax.set_ylabel(escape.mpl(_axis_label(comp, "y") + ", logit axis"))
        ax.set_title(escape.mpl(f"{comp.y_name} vs {comp.x_name} on logit axes"), loc="left")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        _place_labels(ax, list(x), list(y), comp.models, _half(xe), _half(ye))
        return _save(fig, path)


def bump(comp: Comparison, path: Path, title: str | None = None) -> Path | None:
    """Rank on the reference (left) to rank on the contrast (right); models that change rank in colour."""
    if comp.n < 2:
        return None
    x, y = comp.means("x"), comp.means("y")
    rx, ry = stats.ranks(x), stats.ranks(y)
    flipped = {f["better_on_x"] for f in (comp.order or {}).get("flips", [])}
    flipped |= {f["better_on_y"] for f in (comp.order or {}).get("flips", [])}
    n = comp.n
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(7.6, 0.42 * n + 1.6))
        # spread tied ranks so their labels stay apart, the better model on the other side on top
        def spread(r: np.ndarray, other: np.ndarray) -> np.ndarray:
            out = r.astype(float).copy()
            for value in np.unique(r):
                idx = np.where(r == value)[0]
                if idx.size > 1:
                    idx = idx[np.argsort(-other[idx], kind="stable")]
                    out[idx] += np.linspace(-0.35, 0.35, idx.size)
            return out

        yl, yr = spread(rx, y), spread(ry, x)
        fmt = "{:.3f}" if comp.y_scale == "ratio" else "{:.1f}"
        fmt_x = "{:.3f}" if comp.x_scale == "ratio" else "{:.1f}"
        for i, model in enumerate(comp.models):
            colour = FLIP if model in flipped else KEPT
            width = 2.4 if model in flipped else 1.6
            ax.plot([0, 1], [yl[i], yr[i]], color=colour, linewidth=width, alpha=0.9, zorder=2)
            ax.scatter([0, 1], [yl[i], yr[i]], color=colour, s=36, zorder=3, edgecolor="white")
            ax.text(-0.04, yl[i], escape.mpl(f"{model}  {fmt_x.format(x[i])}  #{rx[i]}"), ha="right", va="center",
                    fontsize=9, color=colour)
            ax.text(1.04, yr[i], escape.mpl(f"#{ry[i]}  {fmt.format(y[i])}  {model}"), ha="left", va="center",
                    fontsize=9, color=colour)
        ax.set_xlim(-0.9, 1.9)
        ax.set_ylim(n + 0.7, 0.3)
        ax.set_xticks([0, 1], escape.mpl_all([comp.x_name, comp.y_name]), fontweight="bold")
        ax.xaxis.tick_top()
        ax.set_yticks([])
        for side in ("left", "bottom", "top", "right"):
            ax.spines[side].set_visible(False)
        flips = (comp.order or {}).get("discordant", 0)
        ties = (comp.order or {}).get("ties", 0)
        caption = f"{flips} of {(comp.order or {}).get('pairs', 0)} pairs flip"
        caption += f", {ties} tied" if ties else ""
        caption += " (models in red)" if flips else ("" if ties else ": the order is kept")
        ax.set_title(escape.mpl(title or f"Rank by top-1: {caption}"), loc="left", pad=26)
        fig.tight_layout()
        return _save(fig, path)


def relative(comp: Comparison, path: Path, order_years: dict[str, int | None], title: str | None = None
             ) -> Path | None:
    """Ratio to the baseline on both datasets per model, in publication order (grouped bars)."""
    rel = comp.relative
    if not rel:
        return None
    models = comp.models
    rx = np.array([rel["x"][m] for m in models])
    ry = np.array([rel["y"][m] for m in models])
    pos = np.arange(len(models))
    width = 0.38
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(6.5, 0.85 * len(models) + 2.5), 4.8))
        bx = ax.bar(pos - width / 2, rx, width, color=REF, label=escape.mpl(comp.x_name))
        by = ax.bar(pos + width / 2, ry, width, color=CON, label=escape.mpl(comp.y_name))
        for bars, values in ((bx, rx), (by, ry)):
            for bar, value in zip(bars, values):
                ax.text(bar.get_x() + bar.get_width() / 2, value, f"{value:.2f}", ha="center", va="bottom",
                        fontsize=7, color="#444444", rotation=90 if len(models) > 12 else 0)
        ax.axhline(1.0, color="#555555", linewidth=1, linestyle="--")
        labels = [f"{m} ({order_years[m]})" if order_years.get(m) else m for m in models]
        ax.set_xticks(pos, escape.mpl_all(labels), rotation=35, ha="right", fontsize=8.5)
        low = min(rx.min(), ry.min(), 1.0)
        high = max(rx.max(), ry.max(), 1.0)
        ax.set_ylim(max(0.0, low - (high - low) * 0.35), high + (high - low) * 0.15 + 0.02)
        ax.set_ylabel(escape.mpl(f"top-1 relative to {rel['baseline']}"))
        ax.set_title(escape.mpl(title or f"Improvement over {rel['baseline']}, in publication order"), loc="left")
        ax.legend(loc="upper left", fontsize=9, ncols=2)
        ax.grid(axis="x", visible=False)
        fig.tight_layout()
        return _save(fig, path)


def render_all(analysis: Analysis, out_dir: str | Path) -> dict[str, Path]:
    """Every figure the report shows, as {name: path}; figures that cannot be drawn are skipped."""
    plots = Path(out_dir) / "plots"
    years = {m: info["year"] for m, info in analysis.models.items()}
    level = float(analysis.settings.get("confidence", 0.95))
    made: dict[str, Path | None] = {
        "scatter": scatter(analysis.main, plots / "scatter.png", confidence=level),
        "scatter_logit": scatter_logit(analysis.main, plots / "scatter_logit.png", confidence=level),
        "bump": bump(analysis.main, plots / "bump.png"),
        "relative": relative(analysis.main, plots / "relative.png", years),
    }
    for comp in analysis.transfer:
        made[f"transfer_{comp.target}"] = scatter(comp, plots / f"transfer_{safepath.slug(comp.target)}.png",
                                                  confidence=level)
    out = {k: v for k, v in made.items() if v is not None}
    log.info("rendered %d plot(s) into %s", len(out), plots)
    return out
