"""A frame folder's frames are its regular image files: a FIFO or a folder with an image suffix is no frame."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clip_fixtures import write_frames

from affectseq.io.frame_folder import frame_files, is_frame_folder
from affectseq.io.video import VideoReader, probe_video


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_or_folder_named_like_a_frame_is_not_read(tmp_path: Path) -> None:
    """Before, a FIFO named ``4.jpg`` was listed as frame 3 and reading it blocked forever (cv2.imread opens it
    and waits for a writer); a sub-folder ``5.jpg`` was read as an unreadable frame, ending the clip there."""
    folder = write_frames(tmp_path / "clip", 3)
    os.mkfifo(folder / "4.jpg")
    (folder / "5.jpg").mkdir()
    assert [p.name for p in frame_files(folder)] == ["1.jpg", "2.jpg", "3.jpg"]
    assert probe_video(folder).frame_count == 3
    assert [f.frame_idx for f in VideoReader(folder)] == [0, 1, 2]

    only_odd = tmp_path / "odd"
    only_odd.mkdir()
    os.mkfifo(only_odd / "1.jpg")
    assert not is_frame_folder(only_odd)
