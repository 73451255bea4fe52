"""Own-videos speed, measured in one run: ``data faces`` vs ``predict`` on the same videos, and a sequence
bundle vs the default model in ``predict`` on the sample clip.

(a) ``data faces`` throughput: the videos (default: the sample clip) become a ``video_csv``
    dataset (each video linked beside a CSV labelling every frame), cropped by
    :func:`affectseq.prepare.face_crops.export_face_crops` (one worker, as ``--workers 1``);
    frames/s = decoded frames / wall-clock seconds. The same videos go through ``affectseq predict``
    (default model, one video at a time) and the ratio faces/predict is printed.
(b) with ``--bundle RUN``: ``predict`` of that sequence bundle vs ``--model default`` on the same clip.

Each measurement runs ``--repeat`` times, the two sides interleaved, and the fastest run of each
counts, so a change in machine load during the run affects both sides alike; the 1-minute load
average is printed. Each ``predict`` is a fresh process (wall clock includes its start-up and model loading; predict's own
processing figure, from ``summary.json``, excludes them).

    python benchmarks/own_videos_speed.py                                 # (a) on the sample clip
    python benchmarks/own_videos_speed.py --bundle runs/gru --frame-model runs/cnn --repeat 2   # (a) and (b)
    python benchmarks/own_videos_speed.py --videos my_videos/train/*.mp4  # (a) on other videos
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "clips" / "WolfgangLanger_Pexels.mp4"


def as_video_csv(videos: list[Path], root: Path) -> int:
    """Link ``videos`` into ``root`` with a CSV labelling every frame; returns the frames decoded in all."""
    from affectseq.io.video import VideoReader

    root.mkdir(parents=True)
    total = 0
    for i, video in enumerate(videos):
        n = sum(1 for _ in VideoReader(video))
        name = f"{i:02d}-{video.stem}"
        os.symlink(video.resolve(), root / f"{name}{video.suffix}")
        rows = "".join(f"{f},0.0,0.0\n" for f in range(n))
        (root / f"{name}.csv").write_text("frame_idx,valence,arousal\n" + rows)
        total += n
    return total


def time_faces(dataset: Path, work: Path) -> float:
    """Seconds of one ``data faces`` run (fresh output folder)."""
    from affectseq.prepare.face_crops import export_face_crops

    out = work / "crops"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    report = export_face_crops(dataset, out, workers=1, progress=False)
    seconds = time.perf_counter() - start
    assert report.written and not report.failures, report.failures
    return seconds


def time_predict(videos: list[Path], model: str, work: Path) -> tuple[float, float]:
    """(wall-clock seconds of one ``affectseq predict`` process over ``videos``, mean of predict's own frames/s).

    A fresh process per call, as a user runs it, so one model's threads or caches do not affect the next.
    """
    out = work / "pred"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "affectseq", "predict", *map(str, videos), "--model", model,
                    "--out", str(out), "--no-progress", "--workers", "1"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    own = [json.loads(p.read_text())["processing"]["fps"] for p in out.glob("*/summary.json")]
    return seconds, sum(own) / len(own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="+", type=Path, default=[DEFAULT_VIDEO])
    parser.add_argument("--bundle", help="a sequence run folder or bundle file for (b)")
    parser.add_argument("--frame-model", help="(b) also time this frame model, e.g. the bundle's own frame CNN run")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="own-videos-speed-") as tmp:
        work = Path(tmp)
        frames = as_video_csv(args.videos, work / "dataset")
        faces, predict, own = [], [], []
        for _ in range(args.repeat):
            faces.append(time_faces(work / "dataset", work))
            seconds, fps = time_predict(args.videos, "default", work)
            predict.append(seconds)
            own.append(fps)
        print(f"videos: {len(args.videos)} ({frames} frames); load average {os.getloadavg()[0]:.1f}")
        f_fps, p_fps = frames / min(faces), frames / min(predict)
        print(f"(a) data faces {f_fps:.1f} frames/s | predict (default model) {p_fps:.1f} frames/s wall clock incl. "
              f"start-up, {max(own):.1f} its own processing figure | ratio faces/predict {f_fps / p_fps:.2f} "
              f"(wall), {f_fps / max(own):.2f} (processing; neither counts process start-up)")
        if args.bundle:
            seq, default, frame = [], [], []
            for _ in range(args.repeat):
                default.append(time_predict(args.videos, "default", work))
                seq.append(time_predict(args.videos, args.bundle, work))
                if args.frame_model:
                    frame.append(time_predict(args.videos, args.frame_model, work))
            if frame:
                print(f"(b) predict's own processing figure, the bundle's frame CNN alone ({args.frame_model}): "
                      f"{max(f for _, f in frame):.1f} frames/s")
            s_fps, d_fps = frames / min(t for t, _ in seq), frames / min(t for t, _ in default)
            s_own, d_own = max(f for _, f in seq), max(f for _, f in default)
            print(f"(b) predict, wall clock incl. start-up: sequence bundle {s_fps:.1f} frames/s | default model "
                  f"{d_fps:.1f} frames/s | ratio bundle/default {s_fps / d_fps:.2f}")
            print(f"(b) predict's own processing figure: bundle {s_own:.1f} | default {d_own:.1f} | "
                  f"ratio {s_own / d_own:.2f}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
