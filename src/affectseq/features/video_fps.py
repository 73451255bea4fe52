"""The frame rate of each video of a dataset, for the feature store's entries (``VideoEntry.fps``).

A temporal model trained on stored features learns windows of frames; the rate of those
frames is what turns its window into seconds (``fps`` / ``window_sec`` in a sequence-model
file), so ``predict`` can resample a video at another rate. The rate comes from the
annotated video itself (an ``fps`` it carries: crops written by ``affectseq data faces`` record
it) or its raw video's header (an ABAW tree's ``videos/``, found anywhere in the tree); ABAW
crops without their raw videos leave it unknown (None, said once).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from affectseq.errors import InputError

log = logging.getLogger(__name__)


def dataset_video_fps(dataset: Any) -> dict[str, float | None]:
    """``video_id`` -> frames per second (None when unknown) over every task and split of an ABAW-like dataset.

    A video's own ``fps`` (``data faces`` crops record it) comes first, then its raw video's
    header. Videos left unknown are logged once, as one warning.
    """
    by_source: dict[Path, float | None] = {}
    rates: dict[str, float | None] = {}
    for task in dataset.tasks:
        for split in dataset.splits(task):
            for video in dataset.videos(task, split):
                fps = getattr(video, "fps", None) or _source_fps(getattr(video, "source_video", None), by_source)
                if rates.get(video.video_id) is None:
                    rates[video.video_id] = float(fps) if fps else None
    unknown = sorted(vid for vid, fps in rates.items() if fps is None)
    if unknown:
        log.warning("%d of %d videos have no known frame rate (no raw video found in the dataset, no 'data faces' "
                    "record), e.g. %s: the store records fps null, so a sequence model trained on it cannot have "
                    "its window resampled by time at prediction", len(unknown), len(rates), unknown[0])
    return rates


def _source_fps(source: Path | None, cache: dict[Path, float | None]) -> float | None:
    """The frame rate in ``source``'s header (probed once per file), None without a readable raw video."""
    from affectseq.io.video import probe_video

    if source is None:
        return None
    if source not in cache:
        try:
            cache[source] = probe_video(source).fps or None
        except InputError as err:
            log.info("%s: frame rate unknown (%s)", source, err)
            cache[source] = None
    return cache[source]
