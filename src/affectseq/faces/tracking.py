"""Face tracking over a video: full detection every k frames, cheap verified tracking in between.

Per frame, :meth:`FaceTracker.update` does one of two things:

- **detection frame** (every ``detect_every`` frames, the first frame, and any frame
  after a scene cut): run the full detector, match detections to the tracks'
  predicted boxes by IoU (Hungarian assignment), start tracks for new faces and
  end tracks whose face is gone;
- **tracking frame**: move each track's box by its velocity and re-fit it with the
  detector's ``refine`` (MTCNN's O-Net on that one crop, well under a millisecond
  per face of a full detection's cost). O-Net's face probability doubles as a
  verification: a track whose crop no longer holds a face ends at once, so boxes
  never linger over an empty frame.

A cheap scene-cut test (mean absolute difference of 32x18 grey thumbnails) forces
a detection on the first frame of a new shot, so a face that appears at a cut is
found on its first frame, not up to k frames later. This schedule depends on the
frames only (:mod:`affectseq.faces.schedule`), so a :class:`FramePlanner` from
:meth:`FaceTracker.planner` can run it and the full detections ahead, in another
thread, and hand each frame's plan to :meth:`FaceTracker.update`.

Face ids are stable while a face stays tracked; a track lost for at most
``reid_frames`` frames is revived under its old id when a detection reappears at
its last place (not across scene cuts). ``main_face_only`` reports only the main
face, by the one rule of :class:`MainFace` (the same for ``predict``, live
prediction and ``affectseq data faces``).

Faces lying on their side (a video with wrong rotation metadata) are found by
searching other frame orientations (``rotations``) on detection frames while no
face is tracked; the orientation that finds faces is then used for detection and
re-fitting until the faces are gone. Boxes and landmarks are always reported in
the upright frame.

Frames larger than ``max_side`` (:data:`affectseq.faces.working.WORK_MAX_SIDE`) are
detected and tracked on a shrunk working copy, so memory and time stay bounded at any
resolution; tracks live in working-copy pixels and are reported in the given frame's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from affectseq.faces.detector import Detection, FaceDetector, box_iou_matrix, check_rgb
from affectseq.faces.orientation import box_to_rotated, detection_from_rotated, quarter_turns, rotate_frame
from affectseq.faces.schedule import DetectionSchedule, FramePlan, FramePlanner
from affectseq.faces.settings import DEFAULT_DETECT_EVERY, check_face_setting
from affectseq.faces.working import WORK_MAX_SIDE, detection_to_full, working_frame


@dataclass(frozen=True)
class TrackedFace:
    """One tracked face on one frame: its stable ``face_id`` and this frame's ``detection``.

    ``detected`` is True when the box comes from a full detection on this frame,
    False when it was tracked (propagated and re-fitted) from earlier frames.
    """

    face_id: int
    detection: Detection
    detected: bool = True


@dataclass
class _Track:
    face_id: int
    detection: Detection
    frame_idx: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    detect_misses: int = 0

    def predicted_box(self, frame_idx: int) -> np.ndarray:
        return np.asarray(self.detection.box, dtype=np.float64) + self.velocity * (frame_idx - self.frame_idx)

    def observe(self, detection: Detection, frame_idx: int) -> None:
        gap = frame_idx - self.frame_idx
        if gap > 0:
            step = (np.asarray(detection.box) - np.asarray(self.detection.box)) / gap
            # Damped velocity: box jitter between frames should not fling the box away.
            self.velocity = 0.5 * self.velocity + 0.5 * step
        self.detection = detection
        self.frame_idx = frame_idx
        self.hits += 1


def _moved(det: Detection, box: np.ndarray) -> Detection:
    """``det`` carried to ``box``: landmarks follow the box's shift and scale."""
    marks = det.landmarks
    if marks is not None:
        old = np.asarray(det.box, dtype=np.float64)
        scale = (box[2:] - box[:2]) / np.maximum(old[2:] - old[:2], 1e-9)
        marks = ((marks - old[:2]) * scale + box[:2]).astype(np.float32)
    return Detection(tuple(float(v) for v in box), det.score, marks)


def _assign(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one assignment maximising total IoU (Hungarian).

    With one track or one detection (the usual case) it is the first argmax, the pair
    scipy's ``linear_sum_assignment`` picks too; scipy.optimize is imported only when
    both sides have several, because its import costs ~0.5 s per process (a tenth of
    predicting a 20-second clip).
    """
    if iou.shape[0] == 1:
        return np.zeros(1, np.intp), np.array([int(np.argmax(iou[0]))])
    if iou.shape[1] == 1:
        return np.array([int(np.argmax(iou[:, 0]))]), np.zeros(1, np.intp)
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(-iou)


class MainFace:
    """The main face of a video, frame by frame: the one rule behind every ``main_face_only``.

    Each face id accumulates its box area over the frames it is seen on (size x
    persistence). On a frame, the main face is the current one while it is still on the
    frame; otherwise (the first face, or the main one's track ended) the face on this
    frame with the largest accumulated area becomes the main face. The rule is causal (it
    never looks ahead), so offline, causal and live prediction agree, and when the main
    person leaves and another stays, both keep their rows: the first until their track
    ends, the other from then on.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start over (a new video)."""
        self._weight: dict[int, float] = {}
        self._main: int | None = None

    def select(self, face_ids: list[int], areas: list[float]) -> int | None:
        """Index in ``face_ids`` of this frame's main face (None on a frame without faces)."""
        for face_id, area in zip(face_ids, areas):
            self._weight[face_id] = self._weight.get(face_id, 0.0) + float(area)
        if not face_ids:
            return None
        if self._main not in face_ids:
            self._main = max(face_ids, key=lambda f: self._weight[f])
        return face_ids.index(self._main)


class FaceTracker:
    """Detect every ``detect_every`` frames and track in between, with stable face ids.

    Args:
        detector: any :class:`~affectseq.faces.detector.FaceDetector`; if it has
            ``refine(rgb, boxes, threshold)`` (MTCNN), tracks are re-fitted and
            verified on every frame, otherwise boxes are carried by their velocity.
        detect_every: frames between full detections (1 = detect on every frame).
        main_face_only: report only the main face (:class:`MainFace`).
        iou_threshold: minimum IoU between a detection and a track's predicted box to match.
        verify_threshold: face probability a tracked crop must keep (``refine``'s threshold).
        cut_threshold: mean absolute grey-level change of a thumbnail (0-255) taken
            as a scene cut, forcing a detection; ``None`` disables the test.
        max_detect_misses: consecutive detection frames a verified track may go
            unmatched by the detector before it ends.
        reid_frames: how long (frames) an ended track can be revived under its id.
        rotations: frame orientations (degrees counter-clockwise, multiples of 90)
            tried for sideways faces, the first being the usual one; ``(0,)`` disables it.
        rotation_search_every: while no face is tracked, search the other orientations
            on every n-th detection frame (bounds the cost on videos without faces).
        confident_score: a face this confident in the current orientation skips the search.
        refine_every: re-fit and verify tracks on every n-th tracking frame, carrying
            boxes and landmarks by their velocity on the others (2 halves the per-frame
            cost; a face leaving mid-shot may then linger one frame).
        max_side: frames whose longer side exceeds this are detected and tracked on a
            copy shrunk to fit (:mod:`affectseq.faces.working`); ``None`` disables it.
    """

    def __init__(
        self,
        detector: FaceDetector,
        detect_every: int = DEFAULT_DETECT_EVERY,
        *,
        main_face_only: bool = False,
        iou_threshold: float = 0.3,
        verify_threshold: float = 0.6,
        cut_threshold: float | None = 20.0,
        max_detect_misses: int = 1,
        reid_frames: int = 24,
        rotations: tuple[int, ...] = (0, 90, 270),
        rotation_search_every: int = 3,
        confident_score: float = 0.98,
        refine_every: int = 2,
        max_side: int | None = WORK_MAX_SIDE,
    ) -> None:
        check_face_setting("detect_every", detect_every)
        if refine_every < 1:
            raise ValueError(f"refine_every must be >= 1, got {refine_every}")
        self.refine_every = int(refine_every)
        self.max_side = max_side
        self.detector = detector
        self.detect_every = int(detect_every)
        self.main_face_only = bool(main_face_only)
        self.iou_threshold = float(iou_threshold)
        self.verify_threshold = float(verify_threshold)
        self.cut_threshold = cut_threshold
        self.max_detect_misses = int(max_detect_misses)
        self.reid_frames = int(reid_frames)
        self._refine = getattr(detector, "refine", None)
        if not rotations:
            raise ValueError("rotations must name at least one orientation, e.g. (0,)")
        self._turn_options = tuple(dict.fromkeys(quarter_turns(int(r)) for r in rotations))
        self.rotation_search_every = max(1, int(rotation_search_every))
        self.confident_score = float(confident_score)
        self._detect_lock = threading.Lock()  # shared with planners: one detector call at a time
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and ids (call between videos)."""
        self._tracks: list[_Track] = []
        self._lost: list[_Track] = []
        self._next_id = 0
        self._schedule = DetectionSchedule(self.detect_every, self.cut_threshold)
        self._plan: FramePlan | None = None
        self._since_detect = self.detect_every  # frames since the last detection (re-fit parity)
        self._main_face = MainFace()
        self._turns = self._turn_options[0]
        self._untracked_rounds = 0
        self.n_frames = 0
        self.n_detections = 0
        self.n_cuts = 0

    def planner(self) -> FramePlanner:
        """A :class:`FramePlanner` that runs this tracker's schedule and full detections ahead of it.

        After ``reset`` a tracker fed plans must get one for every frame (from a new planner).
        """
        return FramePlanner(self.detector, DetectionSchedule(self.detect_every, self.cut_threshold),
                            lambda: self._turns, self._detect_lock, max_side=self.max_side)

    # ------------------------------------------------------------------ per frame
    def update(self, frame_idx: int, rgb: np.ndarray, plan: FramePlan | None = None) -> list[TrackedFace]:
        """Faces on frame ``frame_idx`` (0-based, increasing) of upright RGB ``rgb``, by face id.

        ``plan``: this frame's :class:`FramePlan` from :meth:`planner` (then pass one on
        every frame); without it the tracker follows its own schedule.
        """
        rgb = check_rgb(rgb)
        if plan is not None and plan.work is not None:
            rgb, scale = plan.work, plan.scale  # the planner already shrank this frame
        else:
            rgb, scale = working_frame(rgb, self.max_side)
        self.n_frames += 1
        cut, detect = (plan.cut, plan.detect) if plan is not None else self._schedule.step(rgb)
        if cut:
            self.n_cuts += 1
            self._lost.clear()  # a face after a cut is not the one before it
        self._plan = plan
        try:
            if detect:
                self._detection_frame(frame_idx, rgb)
                self._since_detect = 1
            else:
                self._tracking_frame(frame_idx, rgb)
                self._since_detect += 1
        finally:
            self._plan = None
        self._drop_duplicates()
        current = [t for t in self._tracks if t.frame_idx == frame_idx]
        if self.main_face_only:
            main = self._main_face.select([t.face_id for t in current], [t.detection.area for t in current])
            current = [] if main is None else [current[main]]
        return [TrackedFace(t.face_id, detection_to_full(t.detection, scale), detect)
                for t in sorted(current, key=lambda t: t.face_id)]

    def _detection_frame(self, frame_idx: int, rgb: np.ndarray) -> None:
        self.n_detections += 1
        detections = self._detect_oriented(rgb)
        predicted = np.array([t.predicted_box(frame_idx) for t in self._tracks]).reshape(-1, 4)
        det_boxes = np.array([d.box for d in detections]).reshape(-1, 4)
        iou = box_iou_matrix(predicted, det_boxes)
        matched_tracks, matched_dets = set(), set()
        if iou.size:
            rows, cols = _assign(iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.iou_threshold:
                    self._tracks[r].observe(detections[c], frame_idx)
                    self._tracks[r].detect_misses = 0
                    matched_tracks.add(r)
                    matched_dets.add(c)
        unmatched = [i for i in range(len(self._tracks)) if i not in matched_tracks]
        kept_alive = self._verify(frame_idx, rgb, unmatched, count_miss=True)
        survivors = set(matched_tracks) | kept_alive
        self._end_tracks([i for i in range(len(self._tracks)) if i not in survivors])
        for c, det in enumerate(detections):
            if c not in matched_dets:
                self._start_track(det, frame_idx)

    def _tracking_frame(self, frame_idx: int, rgb: np.ndarray) -> None:
        if not self._tracks:
            return
        if self._refine is None or self._since_detect % self.refine_every:
            # No verifier (Haar), or not a re-fit frame: carry boxes by their velocity.
            for t in self._tracks:
                t.observe(_moved(t.detection, t.predicted_box(frame_idx)), frame_idx)
            return
        kept = self._verify(frame_idx, rgb, list(range(len(self._tracks))), count_miss=False)
        self._end_tracks([i for i in range(len(self._tracks)) if i not in kept])

    def _verify(self, frame_idx: int, rgb: np.ndarray, indices: list[int], count_miss: bool) -> set[int]:
        """Re-fit tracks ``indices`` at their predicted boxes; the indices still holding a face."""
        if not indices or self._refine is None:
            return set()
        if count_miss:
            indices = [i for i in indices if self._tracks[i].detect_misses < self.max_detect_misses]
            if not indices:
                return set()
        hw = rgb.shape[:2]
        boxes = [box_to_rotated(self._tracks[i].predicted_box(frame_idx), self._turns, hw) for i in indices]
        # A rotated view, not a copy: refine only reads the boxes' pixels.
        refined_all = self._refine(np.rot90(rgb, self._turns), boxes, threshold=self.verify_threshold)
        kept = set()
        for i, refined in zip(indices, refined_all):
            if refined is not None:
                refined = detection_from_rotated(refined, self._turns, hw)
                self._tracks[i].observe(refined, frame_idx)
                if count_miss:
                    self._tracks[i].detect_misses += 1
                kept.add(i)
        return kept

    def _detect_at(self, rgb: np.ndarray, turns: int) -> list[Detection]:
        found = self._plan.detections.get(turns) if self._plan is not None else None
        if found is None:
            with self._detect_lock:
                found = self.detector.detect(rotate_frame(rgb, turns))
        return [detection_from_rotated(d, turns, rgb.shape[:2]) for d in found]

    def _detect_oriented(self, rgb: np.ndarray) -> list[Detection]:
        """Detect in the current orientation; while nothing is tracked, now and then try the others.

        MTCNN still finds many sideways faces, with lower confidence (about 0.9 against
        0.99+ upright on ``rotated90_single_face.mp4``), and then loses them while
        tracking; so unless the current orientation finds a confident face, every
        orientation is tried and the most confident one wins.
        """
        detections = self._detect_at(rgb, self._turns)
        if self._tracks or len(self._turn_options) == 1:
            self._untracked_rounds = 0
            return detections
        search = self._untracked_rounds % self.rotation_search_every == 0
        self._untracked_rounds += 1
        best = max((d.score for d in detections), default=0.0)
        if not search or best >= self.confident_score:
            return detections
        for turns in self._turn_options:
            if turns != self._turns:
                found = self._detect_at(rgb, turns)
                score = max((d.score for d in found), default=0.0)
                if score > best:
                    best, detections, self._turns = score, found, turns
        return detections

    # ------------------------------------------------------------------ bookkeeping
    def _start_track(self, det: Detection, frame_idx: int) -> None:
        self._lost = [t for t in self._lost if frame_idx - t.frame_idx <= self.reid_frames]
        if self._lost:
            iou = box_iou_matrix([det.box], [t.detection.box for t in self._lost])[0]
            best = int(iou.argmax())
            if iou[best] >= self.iou_threshold:
                track = self._lost.pop(best)
                track.velocity[:] = 0.0  # stale after a gap
                track.observe(det, frame_idx)
                track.detect_misses = 0
                self._tracks.append(track)
                return
        self._tracks.append(_Track(self._next_id, det, frame_idx))
        self._next_id += 1

    def _end_tracks(self, indices: list[int]) -> None:
        ended = set(indices)
        self._lost.extend(t for i, t in enumerate(self._tracks) if i in ended)
        self._tracks = [t for i, t in enumerate(self._tracks) if i not in ended]

    def _drop_duplicates(self) -> None:
        """Two tracks converged onto one face (after re-fitting): keep the older one."""
        if len(self._tracks) < 2:
            return
        boxes = [t.detection.box for t in self._tracks]
        iou = box_iou_matrix(boxes, boxes)
        order = sorted(range(len(self._tracks)), key=lambda i: (-self._tracks[i].hits, self._tracks[i].face_id))
        dropped: set[int] = set()
        for pos, i in enumerate(order):
            if i in dropped:
                continue
            for j in order[pos + 1:]:
                if j not in dropped and iou[i, j] > 0.5:
                    dropped.add(j)
        if dropped:
            self._tracks = [t for k, t in enumerate(self._tracks) if k not in dropped]
