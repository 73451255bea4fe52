"""affectseq.io stage: the streaming video reader (:mod:`affectseq.io.video`).

``probe_video(path) -> VideoInfo`` and ``VideoReader(path, stride, target_fps,
start_sec, end_sec)`` yielding ``VideoFrame(frame_idx, time_sec, rgb)``.
"""
