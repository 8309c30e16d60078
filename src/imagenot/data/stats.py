"""Channel statistics of a dataset in one streaming pass, never holding a float copy of it.

Only computed when a run asks for `normalization="dataset"`; every other run normalises with fixed
statistics (ImageNet's by default), the same for every data path.
"""

from __future__ import annotations

import logging
from typing import Any

from imagenot.data.dataset import ChannelMoments

log = logging.getLogger(__name__)


def channel_stats(ds: Any, max_images: int = 10000, channels: int = 3) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units over an evenly spaced sample of at most `max_images`.

    In-memory uint8 datasets are summed chunk by chunk; file datasets decode one image at a time (at its own
    size). Gray data get one value per model channel, repeated.
    """
    if hasattr(ds, "images"):
        mean, std = ds.channel_stats(max_images)
    else:
        from imagenot.data.transforms import to_channels

        acc = ChannelMoments(channels)
        step = max(1, len(ds) // max_images)
        for i in range(0, len(ds), step):
            acc.add(to_channels(ds.original(i), channels))
        mean, std = acc.result()
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    log.info("dataset channel statistics: mean %s, std %s", [round(m, 4) for m in mean], [round(s, 4) for s in std])
    return [float(m) for m in mean], [float(s) for s in std]


__all__ = ["channel_stats"]
