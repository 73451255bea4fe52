"""Peak memory of ``affectseq predict`` on a 4K clip vs the same clip at 640x360: bounded by resolution?

Builds two clips of the same frames: ``../shared/clips/single_face.mp4`` (640x360,
72 frames) re-encoded as is, and upscaled 6x to 3840x2160 with OpenCV (Lanczos),
both written with PyAV (H.264, same fps). Each ``affectseq predict`` then runs in its
own child process; its peak resident set size comes from ``os.wait4`` (the child's
``ru_maxrss``). Prints both peaks and the 4K/640 ratio; the target is <= 1.5x
(docs/reliability.md, "Bounded memory").

    python benchmarks/predict_memory.py [--clip ../shared/clips/single_face.mp4] [--scale 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_clip(src: Path, dst: Path, scale: int) -> tuple[int, int, int]:
    """``src``'s frames resized ``scale``x (1 = as is) into ``dst`` (H.264); returns (width, height, frames)."""
    import av
    import cv2

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        fps = stream_in.average_rate or 30
        stream = None
        n = 0
        for frame in inp.decode(stream_in):
            rgb = frame.to_ndarray(format="rgb24")
            if scale != 1:
                rgb = cv2.resize(rgb, (rgb.shape[1] * scale, rgb.shape[0] * scale), interpolation=cv2.INTER_LANCZOS4)
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
                stream.options = {"crf": "20", "preset": "veryfast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
            n += 1
        for packet in stream.encode():
            out.mux(packet)
        return stream.width, stream.height, n


def peak_rss_mb(cmd: list[str]) -> float:
    """Run ``cmd`` as a child process; its peak RSS in MiB (Linux ``ru_maxrss`` is in KiB)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode(errors='replace')[-2000:]}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=ROOT.parent / "shared" / "clips" / "single_face.mp4")
    parser.add_argument("--scale", type=int, default=6, help="upscale factor of the large clip (6: 640x360 -> 4K)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="affectseq-predict-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    peaks = {}
    for label, scale in (("small", 1), ("large", args.scale)):
        clip = work / f"{label}.mp4"
        w, h, n = write_clip(args.clip, clip, scale)
        cmd = [sys.executable, "-m", "affectseq", "predict", str(clip), "--out", str(work / f"out_{label}"),
               "--no-progress", "--overwrite"]
        peaks[label] = peak_rss_mb(cmd)
        print(f"{label}: {w}x{h}, {n} frames, {clip.stat().st_size / 1e6:.1f} MB file: "
              f"peak RSS {peaks[label]:.0f} MiB", flush=True)
    ratio = peaks["large"] / peaks["small"]
    print(f"peak RSS ratio large/small: {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
