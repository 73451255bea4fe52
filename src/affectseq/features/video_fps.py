"""The frame rate of each video of a dataset, for the feature store's entries (``VideoEntry.fps``).

A temporal model trained on stored features learns windows of frames; the rate of those
frames is what turns its window into seconds (``fps`` / ``window_sec`` in a sequence-model
file), so ``predict`` can resample a video at another rate. The rate comes from the
annotated video itself (an ``fps`` it carries) or its raw video's header; a dataset of crops
without raw videos leaves it unknown (None).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from affectseq.errors import InputError

log = logging.getLogger(__name__)


def dataset_video_fps(dataset: Any) -> dict[str, float | None]:
    """``video_id`` -> frames per second (None when unknown) over every task and split of an ABAW-like dataset."""
    from affectseq.io.video import probe_video

    by_source: dict[Path, float | None] = {}
    rates: dict[str, float | None] = {}
    for task in dataset.tasks:
        for split in dataset.splits(task):
            for video in dataset.videos(task, split):
                fps = getattr(video, "fps", None)
                source = getattr(video, "source_video", None)
                if not fps and source is not None:
                    if source not in by_source:
                        try:
                            by_source[source] = probe_video(source).fps or None
                        except InputError as err:
                            log.info("%s: frame rate unknown (%s)", source, err)
                            by_source[source] = None
                    fps = by_source[source]
                if rates.get(video.video_id) is None:
                    rates[video.video_id] = float(fps) if fps else None
    return rates
