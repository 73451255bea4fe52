"""Faces stage accuracy and speed on the real clips in ../shared/clips (ground truth: ../shared/README.md).

Per clip, frames are decoded once (upright, via ``affectseq.io.video.VideoReader``),
then timed separately:

* the detector alone on every frame (ms/frame, face found / false face rates),
* the ``FaceTracker`` at the chosen settings (frames/s, the same rates), which is
  what ``affectseq predict`` runs,
* on multi_face_pan.mp4: faces per frame and track-id switches.

A sweep over ``detect_every`` on WolfgangLanger_Pexels.mp4 shows the speed/accuracy
trade-off behind the default. Wall-clock and CPU (process) times are both given:
on a shared machine CPU time is the steadier measure of our own cost.

    python benchmarks/faces_detection.py [--threads 1] [--detect-every 8] [--refine-every 2] [--json out.json]
    python benchmarks/faces_detection.py --calibrate    # box calibrations used by align.py / haar.py
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "clips"


@dataclass(frozen=True)
class Truth:
    """Ground truth of one clip: face ranges (inclusive, 0-based) and faces per face frame."""

    clip: str
    face_ranges: tuple[tuple[int, int], ...]
    faces: int = 1
    all_frames_face: bool = False

    def has_face(self, n_frames: int) -> np.ndarray:
        mask = np.full(n_frames, self.all_frames_face)
        for lo, hi in self.face_ranges:
            mask[lo:hi + 1] = True
        return mask


TRUTH = [
    Truth("WolfgangLanger_Pexels.mp4", (), all_frames_face=True),
    Truth("single_face.mp4", (), all_frames_face=True),
    Truth("rotated90_single_face.mp4", (), all_frames_face=True),
    Truth("face_noface.mov", ((0, 71),)),
    Truth("noface_face.mov", ((96, 167),)),
    Truth("no_face.mp4", ()),
    Truth("multi_face_pan.mp4", (), faces=5, all_frames_face=True),
]


def decode(path: Path) -> list[np.ndarray]:
    from affectseq.io.video import VideoReader

    with VideoReader(path) as reader:
        return [frame.rgb for frame in reader]


def rates(counts: list[int], truth: np.ndarray) -> tuple[int, int, int, int]:
    """(face frames with a face, face frames, no-face frames with a face, no-face frames)."""
    found = np.asarray(counts) > 0
    return int((found & truth).sum()), int(truth.sum()), int((found & ~truth).sum()), int((~truth).sum())


def id_switches(tracks_per_frame: list[list[tuple[int, tuple]]], expected_faces: int) -> int:
    """Extra ids beyond the expected faces, plus jumps of an id between two faces on consecutive frames."""
    from affectseq.faces.detector import box_iou_matrix

    ids = {fid for frame in tracks_per_frame for fid, _ in frame}
    jumps = 0
    for prev, cur in zip(tracks_per_frame, tracks_per_frame[1:]):
        before = dict(prev)
        for fid, box in cur:
            if fid in before and box_iou_matrix([box], [before[fid]])[0, 0] < 0.3:
                jumps += 1
    return max(0, len(ids) - expected_faces) + jumps


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_tracker(detector, frames, detect_every: int, **kw):
    from affectseq.faces import FaceTracker

    tracker = FaceTracker(detector, detect_every=detect_every, **kw)
    out, wall, cpu = timed(lambda: [tracker.update(i, rgb) for i, rgb in enumerate(frames)])
    return out, wall, cpu, tracker


def benchmark(args: argparse.Namespace) -> dict:
    from affectseq.faces import create_detector

    detector = create_detector(args.detector)
    results: dict = {"detector": args.detector, "detect_every": args.detect_every,
                     "refine_every": args.refine_every, "clips": {}}
    totals = np.zeros(4, dtype=int)
    track_totals = np.zeros(4, dtype=int)
    clip_frames: dict[str, list[np.ndarray]] = {}
    for truth in TRUTH:
        frames, dec_wall, _ = timed(lambda: decode(args.clips / truth.clip))
        clip_frames[truth.clip] = frames
        mask = truth.has_face(len(frames))
        detector.detect(frames[0])  # warm-up (first-call allocations)
        dets, det_wall, det_cpu = timed(lambda: [detector.detect(f) for f in frames])
        tracked, trk_wall, trk_cpu, tracker = run_tracker(detector, frames, args.detect_every,
                                                          refine_every=args.refine_every)
        det_rates = rates([len(d) for d in dets], mask)
        trk_rates = rates([len(t) for t in tracked], mask)
        totals += det_rates
        track_totals += trk_rates
        n = len(frames)
        row = {
            "frames": n, "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
            "decode_fps": n / dec_wall,
            "detector_ms_per_frame": 1e3 * det_wall / n, "detector_cpu_ms_per_frame": 1e3 * det_cpu / n,
            "tracker_fps": n / trk_wall, "tracker_cpu_fps": n / max(trk_cpu, 1e-9),
            "detector_rates": det_rates, "tracker_rates": trk_rates,
            "tracker_detections": tracker.n_detections, "scene_cuts": tracker.n_cuts,
        }
        if truth.faces > 1:
            row["detector_frames_with_all_faces"] = sum(len(d) == truth.faces for d in dets)
            row["tracker_frames_with_all_faces"] = sum(len(t) == truth.faces for t in tracked)
            row["tracker_id_switches"] = id_switches(
                [[(t.face_id, t.detection.box) for t in frame] for frame in tracked], truth.faces)
            row["tracker_ids"] = sorted({t.face_id for frame in tracked for t in frame})
        results["clips"][truth.clip] = row
        print(f"{truth.clip:28s} {row['size']:>8s} n={n:3d} det {row['detector_ms_per_frame']:6.1f} ms/f "
              f"(cpu {row['detector_cpu_ms_per_frame']:5.1f}) hit {det_rates[0]}/{det_rates[1]} "
              f"false {det_rates[2]}/{det_rates[3]} | tracker {row['tracker_fps']:6.1f} f/s "
              f"(cpu {row['tracker_cpu_fps']:6.1f}) hit {trk_rates[0]}/{trk_rates[1]} "
              f"false {trk_rates[2]}/{trk_rates[3]} dets {tracker.n_detections} cuts {tracker.n_cuts}"
              + (f" | all-{truth.faces} det {row['detector_frames_with_all_faces']}/{n} "
                 f"trk {row['tracker_frames_with_all_faces']}/{n} switches {row['tracker_id_switches']} "
                 f"ids {row['tracker_ids']}" if truth.faces > 1 else ""), flush=True)
    results["detector_totals"] = totals.tolist()
    results["tracker_totals"] = track_totals.tolist()
    for name, t in (("detector", totals), ("tracker", track_totals)):
        print(f"{name:8s} face found in {t[0]}/{t[1]} face frames ({100 * t[0] / t[1]:.2f}%), "
              f"false face in {t[2]}/{t[3]} no-face frames ({100 * t[2] / t[3]:.2f}%)")

    sweep_clip = "WolfgangLanger_Pexels.mp4"
    frames = clip_frames[sweep_clip]
    results["sweep"] = {}
    print(f"detect_every sweep on {sweep_clip} ({len(frames)} frames):")
    for k in args.sweep:
        for refine_every in args.refine_sweep:
            tracked, wall, cpu, tracker = run_tracker(detector, frames, k, refine_every=refine_every)
            hit = sum(len(t) > 0 for t in tracked)
            results["sweep"][f"k={k},refine_every={refine_every}"] = {
                "fps": len(frames) / wall, "cpu_fps": len(frames) / cpu, "hit": hit}
            print(f"  k={k:2d} refine_every={refine_every}: {len(frames) / wall:7.1f} f/s "
                  f"(cpu {len(frames) / cpu:7.1f}) face in {hit}/{len(frames)} "
                  f"detections {tracker.n_detections}", flush=True)
    return results


def calibrate(args: argparse.Namespace) -> None:
    """Print TEMPLATE_BOX_112 (align.py) and HAAR_TO_MTCNN (haar.py) measured on frontal faces."""
    import cv2

    from affectseq.faces import create_detector
    from affectseq.faces.align import landmarks_transform
    from affectseq.faces.detector import box_iou_matrix

    images = [cv2.cvtColor(cv2.imread(str(args.clips / n)), cv2.COLOR_BGR2RGB)
              for n in ("single_face.jpg", "multi_face.jpg")]
    images += decode(args.clips / "WolfgangLanger_Pexels.mp4")[::20]
    mtcnn = create_detector("mtcnn")
    haar = create_detector("haar", calibrate_boxes=False)
    aligned_boxes, haar_rows = [], []
    for img in images:
        found = mtcnn.detect(img)
        for det in found:
            matrix = landmarks_transform(det.landmarks)
            scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
            centre = matrix[:, :2] @ np.array(det.center) + matrix[:, 2]
            w, h = det.width * scale, det.height * scale
            aligned_boxes.append([centre[0] - w / 2, centre[1] - h / 2, centre[0] + w / 2, centre[1] + h / 2])
        hdets = haar.detect(img)
        if found and hdets:
            iou = box_iou_matrix([d.box for d in hdets], [d.box for d in found])
            for i, hd in enumerate(hdets):
                j = int(iou[i].argmax())
                if iou[i, j] >= 0.3:
                    side = 0.5 * (hd.width + hd.height)
                    m = found[j]
                    haar_rows.append([(m.center[0] - hd.center[0]) / side, (m.center[1] - hd.center[1]) / side,
                                      m.width / side, m.height / side])
    print(f"TEMPLATE_BOX_112 (mean of {len(aligned_boxes)} faces):", np.round(np.mean(aligned_boxes, 0), 1).tolist())
    print(f"HAAR_TO_MTCNN (median of {len(haar_rows)} pairs):", np.round(np.median(haar_rows, 0), 2).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=CLIPS, help="folder of the shared clips")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--detect-every", type=int, default=None, help="default: FaceTracker's default")
    parser.add_argument("--sweep", type=int, nargs="*", default=[1, 4, 8, 12, 16])
    parser.add_argument("--refine-every", type=int, default=None, help="default: FaceTracker's default")
    parser.add_argument("--refine-sweep", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--calibrate", action="store_true", help="print the box calibrations and exit")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.calibrate:
        calibrate(args)
        return
    import inspect

    from affectseq.faces import FaceTracker

    defaults = inspect.signature(FaceTracker).parameters
    if args.detect_every is None:
        args.detect_every = defaults["detect_every"].default
    if args.refine_every is None:
        args.refine_every = defaults["refine_every"].default
    print(f"torch threads: {torch.get_num_threads()}, detector {args.detector}, "
          f"detect_every {args.detect_every}, refine_every {args.refine_every}")
    results = benchmark(args)
    results["torch_threads"] = torch.get_num_threads()
    if args.json:
        from affectseq.utils.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
