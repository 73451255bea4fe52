"""Many short clips vs one long video holding the same frames: ``predict`` and ``extract`` frames/s, one run.

Clip datasets hold thousands of clips of a few seconds; whatever a command pays per file
(opening and probing it, building the face tracker, the model's last batch, writing
outputs, the timeline PNG) is paid thousands of times. This benchmark cuts a clip of
``--seconds`` (3) from a real video, makes ``--copies`` (60) copies of it, and one video
holding exactly the same frames (the copies end to end, same codec and rate). Then, in
subprocesses of the real CLI, interleaved ``--repeat`` times:

* ``predict``: ``affectseq predict CLIPS_DIR`` vs ``affectseq predict LONG.mp4``;
* ``extract``: ``affectseq extract --data`` on a ``clip_folders`` dataset of the copies vs on
  one holding the long video, both straight from the raw videos (``--checkpoint default``).

It prints frames/s (wall clock and per CPU-second of the process and its children) of
each and the ratio clips / long video (target >= 0.8). ``--baseline-src PATH`` runs every
command also with the code under ``PATH`` (``PYTHONPATH=PATH``; e.g. a worktree of an
older commit's ``src``), interleaved, so before and after are measured in the same run.

    python benchmarks/clips_speed.py                       # 60 x 3 s, predict and extract
    python benchmarks/clips_speed.py --copies 20 --only predict
    python benchmarks/clips_speed.py --baseline-src /tmp/before/src --repeat 2
    python benchmarks/clips_speed.py --only predict --no-timeline   # without the per-video timeline.png

The machine may be shared: the 1-minute load average is printed next to each pair;
prefer the CPU ratios and interleaved repeats when it is loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "clips" / "WolfgangLanger_Pexels.mp4"


def make_inputs(video: Path, seconds: float, copies: int, work: Path) -> tuple[Path, Path, int]:
    """(folder of ``copies`` clips, the long video, frames in all): the first ``seconds`` of ``video``."""
    import av

    frames, rate = [], None
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or 25
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= round(seconds * float(rate)):
                break
    clip = work / "clip.mp4"
    _encode(clip, frames, rate)
    clips = work / "clips"
    clips.mkdir()
    for i in range(copies):
        shutil.copyfile(clip, clips / f"clip_{i:03d}.mp4")
    long_video = work / "long" / "long.mp4"
    long_video.parent.mkdir()
    _encode(long_video, frames * copies, rate)
    return clips, long_video, len(frames) * copies


def _encode(path: Path, frames: list, rate) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())


def clip_folders(root: Path, videos: list[Path]) -> Path:
    """A ``clip_folders`` dataset: the videos split over train/validation class folders (links, no copies)."""
    for i, video in enumerate(videos):
        folder = root / ("validation" if i % 5 == 4 else "train") / ("happy" if i % 2 else "sad")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / video.name).symlink_to(video)
    return root


def timed(command: list[str], src: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child and its children) of one command, code from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(kind: str, clips: Path, long_video: Path, out: Path, extra: list[str] = ()) -> dict[str, list[str]]:
    """The two commands compared for ``kind`` (predict or extract), writing under ``out``; ``extra``: predict's."""
    py = [sys.executable, "-m", "affectseq"]
    if kind == "predict":
        return {"clips": py + ["predict", str(clips), "--out", str(out / "clips"), "--no-progress", *extra],
                "long": py + ["predict", str(long_video), "--out", str(out / "long"), "--no-progress", *extra]}
    many = clip_folders(out / "data_clips", sorted(clips.glob("*.mp4")))
    one = out / "data_long" / "train" / "sad"
    one.mkdir(parents=True)
    (one / long_video.name).symlink_to(long_video)
    # The long video's dataset needs a validation clip too: the same first clip (its frames are not counted).
    val = out / "data_long" / "validation" / "happy"
    val.mkdir(parents=True)
    (val / "clip_000.mp4").symlink_to(sorted(clips.glob("*.mp4"))[0])
    return {"clips": py + ["extract", "--data", str(many), "--checkpoint", "default", "--out", str(out / "s_clips")],
            "long": py + ["extract", "--data", str(out / "data_long"), "--checkpoint", "default",
                          "--out", str(out / "s_long")]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--copies", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", choices=("predict", "extract"), default=None)
    parser.add_argument("--baseline-src", type=Path, default=None, help="also time the code under this src folder")
    parser.add_argument("--no-timeline", action="store_true", help="predict without timeline.png (both sides)")
    args = parser.parse_args()
    codes = {"ours": REPO / "src", **({"baseline": args.baseline_src} if args.baseline_src else {})}
    kinds = [args.only] if args.only else ["predict", "extract"]
    with tempfile.TemporaryDirectory(prefix="affectseq-clips-") as tmp:
        work = Path(tmp)
        clips, long_video, n_frames = make_inputs(args.video, args.seconds, args.copies, work)
        val_frames = n_frames // args.copies  # extract's long dataset also holds one validation clip
        print(f"{args.copies} clips of {n_frames // args.copies} frames ({args.seconds:g} s) = {n_frames} frames; "
              f"one video of the same {n_frames} frames; code: {', '.join(f'{k}={v}' for k, v in codes.items())}")
        results: dict[str, list[dict]] = {}
        for rep in range(args.repeat):
            for kind in kinds:
                for code, src in codes.items():
                    out = work / f"out-{kind}-{code}-{rep}"
                    out.mkdir()
                    row = {"load_1min": os.getloadavg()[0]}
                    extra = ["--no-timeline"] if args.no_timeline else []
                    for side, command in commands(kind, clips, long_video, out, extra).items():
                        frames = n_frames + (val_frames if kind == "extract" else 0)
                        wall, cpu = timed(command, src)
                        row[side] = {"wall_sec": wall, "cpu_sec": cpu, "fps": frames / wall, "cpu_fps": frames / cpu}
                    row["ratio_wall"] = row["clips"]["fps"] / row["long"]["fps"]
                    row["ratio_cpu"] = row["clips"]["cpu_fps"] / row["long"]["cpu_fps"]
                    results.setdefault(f"{kind}/{code}", []).append(row)
                    print(f"[{rep + 1}] {kind:7s} {code:8s} clips {row['clips']['fps']:6.1f} fps "
                          f"({row['clips']['cpu_fps']:6.1f}/CPU-s) | long {row['long']['fps']:6.1f} fps "
                          f"({row['long']['cpu_fps']:6.1f}/CPU-s) | ratio wall {row['ratio_wall']:.3f} "
                          f"CPU {row['ratio_cpu']:.3f} | load {row['load_1min']:.1f}", flush=True)
        print("best of repeats (highest ratio by wall clock):")
        for key, rows in results.items():
            best = max(rows, key=lambda r: r["ratio_wall"])
            print(f"  {key:16s} ratio wall {best['ratio_wall']:.3f}  CPU {best['ratio_cpu']:.3f}")
        print(json.dumps(results))


if __name__ == "__main__":
    main()
