"""Streaming video reader: real clips, self-encoded containers, sampling options and every bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import av
import numpy as np
import pytest

from affectseq.errors import InputError
from affectseq.io.video import VideoDecodeError, VideoReader, iter_frames, probe_video

# Decodable frame counts and upright sizes from ../shared/README.md.
REAL_CLIPS = {
    "WolfgangLanger_Pexels.mp4": (472, 640, 360),
    "single_face.mp4": (72, 640, 360),
    "no_face.mp4": (95, 960, 540),
    "face_noface.mov": (169, 960, 540),
    "noface_face.mov": (169, 960, 540),
    "rotated90_single_face.mp4": (72, 360, 640),
    "multi_face_pan.mp4": (48, 960, 540),
}


def _encode(path: Path, codec: str, n_frames: int, fmt: str | None = None, size=(64, 48), rate: int = 25,
            audio: str | None = None, rotation: int | None = None) -> Path:
    """Write a video whose frame i is uniformly gray at level 10 * i (so order is checkable after decode).

    ``audio`` names an audio codec to add a short silent track with.
    """
    width, height = size
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream(audio, rate=48000) if audio else None
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 10 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            for i in range(4):
                samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                samples.sample_rate, samples.pts = 48000, i * 1024
                for packet in audio_stream.encode(samples):
                    container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clips_decode_fully_upright(clips_dir: Path, name: str) -> None:
    n_expected, width, height = REAL_CLIPS[name]
    info = probe_video(clips_dir / name)
    assert (info.width, info.height) == (width, height)
    assert info.frame_count_exact is False and info.frame_count >= n_expected
    with VideoReader(clips_dir / name) as reader:
        frames = list(reader)
    assert len(frames) == n_expected == reader.frames_decoded
    assert [f.frame_idx for f in frames] == list(range(n_expected))
    assert all(f.rgb.shape == (height, width, 3) and f.rgb.dtype == np.uint8 for f in frames[:3])
    times = np.array([f.time_sec for f in frames])
    assert times[0] == pytest.approx(0.0, abs=1e-9) and np.all(np.diff(times) > 0)
    # Timestamps advance at the stream's rate (within a frame of jitter for variable-rate phone clips).
    assert times[-1] == pytest.approx((n_expected - 1) / info.fps, abs=1.5 / info.fps)


def test_no_face_header_overstates_frames_and_says_estimated(clips_dir: Path) -> None:
    info = probe_video(clips_dir / "no_face.mp4")
    assert info.frame_count == 98 and not info.frame_count_exact
    exact = probe_video(clips_dir / "no_face.mp4", count_frames=True)
    assert exact.frame_count == 95 and exact.frame_count_exact


def test_rotation_matches_ffmpeg_autorotate(clips_dir: Path) -> None:
    info = probe_video(clips_dir / "rotated90_single_face.mp4")
    assert info.rotation_deg == 90 and (info.stored_width, info.stored_height) == (640, 360)
    rotated = next(iter(VideoReader(clips_dir / "rotated90_single_face.mp4"))).rgb
    plain = next(iter(VideoReader(clips_dir / "single_face.mp4"))).rgb
    assert rotated.shape == (640, 360, 3) and rotated.flags["C_CONTIGUOUS"]
    # The clip is single_face.mp4 stream-copied with a 90 degree (counter-clockwise) display matrix.
    assert np.array_equal(rotated, np.rot90(plain, 1))


def test_hand_made_rotation_270(tmp_path: Path) -> None:
    path = _encode(tmp_path / "rot.mp4", "mpeg4", 3, size=(64, 32), rotation=-90)
    info = probe_video(path)
    assert info.rotation_deg == 270 and (info.width, info.height) == (32, 64)
    assert next(iter(VideoReader(path))).rgb.shape == (64, 32, 3)


@pytest.mark.parametrize("ext,codec,fmt,audio", [("mkv", "ffv1", "matroska", "aac"), ("avi", "mjpeg", "avi", None),
                                                 ("webm", "libvpx", "webm", "libopus"),
                                                 ("mp4", "mpeg4", "mp4", "aac"), ("mov", "h264", "mov", "aac")])
def test_containers_decode_in_order(tmp_path: Path, ext: str, codec: str, fmt: str, audio: str | None) -> None:
    path = _encode(tmp_path / f"gray.{ext}", codec, 12, fmt=fmt, audio=audio)
    info = probe_video(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (64, 48, 25.0, audio is not None)
    frames = list(VideoReader(path))
    assert [f.frame_idx for f in frames] == list(range(12))
    levels = np.array([f.rgb.mean() for f in frames])
    assert np.allclose(levels, 10 * np.arange(12), atol=4)  # lossy codecs stay within a few levels
    assert np.allclose([f.time_sec for f in frames], np.arange(12) / 25, atol=1e-3)


def test_stride_target_fps_and_time_window(clips_dir: Path) -> None:
    clip = clips_dir / "single_face.mp4"  # 30 fps, 72 frames
    assert [f.frame_idx for f in VideoReader(clip, stride=5)] == list(range(0, 72, 5))
    assert [f.frame_idx for f in VideoReader(clip, target_fps=10)] == list(range(0, 72, 3))
    assert len(list(VideoReader(clip, target_fps=120))) == 72  # faster than the video: every frame
    window = list(VideoReader(clip, start_sec=1.0, end_sec=1.5, stride=2))
    assert [f.frame_idx for f in window] == [30, 32, 34, 36, 38, 40, 42, 44]
    assert all(1.0 <= f.time_sec < 1.5 for f in window)
    wolf = list(VideoReader(clips_dir / "WolfgangLanger_Pexels.mp4", target_fps=5, end_sec=10))
    assert len(wolf) == 50 and all(np.diff([f.time_sec for f in wolf]) > 0.15)
    with pytest.raises(ValueError):
        VideoReader(clip, stride=0)
    with pytest.raises(ValueError):
        VideoReader(clip, stride=2, target_fps=5)
    with pytest.raises(ValueError):
        VideoReader(clip, start_sec=2, end_sec=1)


def test_reader_pickles_and_restarts(clips_dir: Path) -> None:
    reader = VideoReader(clips_dir / "multi_face_pan.mp4", stride=16)
    clone = pickle.loads(pickle.dumps(reader))
    running = iter(reader)
    next(running)
    assert [f.frame_idx for f in pickle.loads(pickle.dumps(reader))] == [0, 16, 32]  # pickled mid-iteration
    running.close()
    first = [f.frame_idx for f in reader]
    assert first == [f.frame_idx for f in reader] == [f.frame_idx for f in clone] == [0, 16, 32]
    assert [f.frame_idx for f in iter_frames(clips_dir / "multi_face_pan.mp4", stride=24)] == [0, 24]


def test_missing_not_a_video_and_still_image(tmp_path: Path, clips_dir: Path) -> None:
    with pytest.raises(InputError, match="not found") as err:
        probe_video(tmp_path / "missing.mp4")
    assert "missing.mp4" in str(err.value)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError, match="not a readable video"):
        VideoReader(text)
    with pytest.raises(InputError, match="still image"):
        probe_video(clips_dir / "single_face.jpg")
    with pytest.raises(InputError, match="not a file"):
        probe_video(tmp_path)


def test_audio_only_zero_frames_and_unsupported_codec(tmp_path: Path) -> None:
    audio = tmp_path / "speech.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 16000, i * 1024
            for packet in stream.encode(samples):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(InputError, match="no video stream"):
        probe_video(audio)
    # A video stream with no frames (only audio was written).
    empty = _encode(tmp_path / "empty.mkv", "mpeg4", 0, fmt="matroska", audio="aac")
    with pytest.raises(InputError, match="no decodable frames"):
        VideoReader(empty)
    # An AVI whose FourCC no FFmpeg decoder knows.
    good = _encode(tmp_path / "good.avi", "mpeg4", 5, fmt="avi")
    unknown = tmp_path / "unknown_codec.avi"
    unknown.write_bytes(good.read_bytes().replace(b"FMP4", b"QQZZ"))
    with pytest.raises(InputError, match="unsupported video codec"):
        probe_video(unknown)


def test_truncated_file_yields_readable_frames_then_raises(tmp_path: Path, clips_dir: Path) -> None:
    # WolfgangLanger keeps its index (moov) before the media data, so a cut file still opens.
    data = (clips_dir / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    frames = []
    with pytest.raises(VideoDecodeError, match="truncated") as err:
        for frame in VideoReader(cut):
            frames.append(frame.frame_idx)
    assert str(cut) in str(err.value) and isinstance(err.value, InputError)
    assert 150 < len(frames) < 472 and frames == list(range(len(frames)))
    # With the index at the end (single_face.mp4), a cut file cannot even be opened.
    data = (clips_dir / "single_face.mp4").read_bytes()
    cut_tail = tmp_path / "cut_tail.mp4"
    cut_tail.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a readable video"):
        VideoReader(cut_tail)


@pytest.mark.parametrize("ext,codec", [("mkv", "ffv1"), ("webm", "libvpx")])
def test_truncated_matroska_is_reported(tmp_path: Path, ext: str, codec: str) -> None:
    # Matroska has no per-frame index: the header's duration is the evidence.
    whole = _encode(tmp_path / f"whole.{ext}", codec, 25, size=(128, 96))
    assert len(list(VideoReader(whole))) == 25
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    seen = []
    with pytest.raises(VideoDecodeError, match="truncated: the last frame ends at"):
        for frame in VideoReader(cut):
            seen.append(frame.frame_idx)
    assert 0 < len(seen) < 25 and seen == list(range(len(seen)))


def test_corrupt_stream_yields_frames_then_raises(tmp_path: Path, clips_dir: Path) -> None:
    data = bytearray((clips_dir / "WolfgangLanger_Pexels.mp4").read_bytes())
    lo, hi = int(len(data) * 0.4), int(len(data) * 0.45)
    data[lo:hi] = np.random.default_rng(0).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    seen = 0
    with pytest.raises(VideoDecodeError, match="corrupt"):
        for _ in VideoReader(corrupt):
            seen += 1
    assert 100 < seen < 472


def test_end_sec_stops_before_a_truncated_tail(tmp_path: Path, clips_dir: Path) -> None:
    data = (clips_dir / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    frames = list(VideoReader(cut, end_sec=2.0))  # the damage lies after 2 s: no error
    assert len(frames) == 48


def test_header_frame_count_without_decoding(clips_dir: Path, tmp_path: Path) -> None:
    from affectseq.io.video import header_frame_count

    assert header_frame_count(clips_dir / "no_face.mp4") == 98  # the header's (over)estimate
    assert header_frame_count(clips_dir / "face_noface.mov") == 169
    mkv = _encode(tmp_path / "a.mkv", "ffv1", 10)  # Matroska has no frame count: duration x fps
    assert header_frame_count(mkv) == 10
    with pytest.raises(InputError, match="not found"):
        header_frame_count(tmp_path / "missing.mp4")


def test_one_list_of_video_suffixes_for_every_folder_listing(tmp_path) -> None:
    """The copies disagreed: predict listed .ts/.mts/.3gp/.flv files of a folder, dataset trees did not
    (a phone's .3gp beside its CSV was no video). One list now: affectseq.io.video.VIDEO_SUFFIXES."""
    from affectseq.data.abaw_layout import scan_abaw_root
    from affectseq.data.video_csv import find_pairs
    from affectseq.predict.batch import collect_videos

    for name in ("phone.3gp", "phone.csv", "camera.MTS"):
        (tmp_path / name).write_bytes(b"")
    assert [(v.name, c.name) for v, c in find_pairs(tmp_path)[tmp_path.name]] == [("phone.3gp", "phone.csv")]
    assert sorted(scan_abaw_root(tmp_path).videos) == ["camera", "phone"]
    assert [v.name for v in collect_videos([tmp_path])] == ["camera.MTS", "phone.3gp"]
