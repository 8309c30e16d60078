"""Issue 25: class names reach the mine's histogram titles; a `$` there must not be read as mathtext."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from PIL import Image

from imagenot.mining.histograms import SimilarityBins, bin_edges, plot_histograms


def test_histograms_draw_class_names_with_dollars_and_underscores(tmp_path: Path) -> None:
    names = {"n00000001": "$x_1^$", "n00000002": "cost $5 or $6", "n00000003": "$\\frac{$"}
    wnids = [w for w in names for _ in range(20)]
    sims = [0.2 + 0.01 * i for i in range(len(wnids))]
    table = pa.table({"wnid": wnids, "similarity": pa.array(sims, pa.float32())})
    bins = SimilarityBins(list(names), bin_edges(min(sims)))
    bins.add(table["wnid"], table["similarity"])
    written = plot_histograms(bins, list(names), names, 0.3, tmp_path / "hist")
    assert {p.name for p in written} == {"overall.png", "classes-001.png"}
    for path in written:
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 200
