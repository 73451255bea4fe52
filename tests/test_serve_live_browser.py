"""The ``/live`` page in a real browser: headless Chromium's fake camera plays a shared clip into getUserMedia.

Starts ``affectseq serve`` (the fixture of ``test_serve_browser``), writes a ``.y4m`` of the
first seconds of ``WolfgangLanger_Pexels.mp4`` for ``--use-file-for-fake-video-capture``, clicks
``live-start`` and waits for a label, a processed fps above 5 and a latency. Then checks Record ->
CSV and that closing the page ends the server's session. ``AFFECTSEQ_SCREENSHOT=1`` also refreshes
docs/images/live.png.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from test_serve_browser import CHROME_ARGS, REPO, _browser, server  # noqa: F401 (server is a fixture)

pytestmark = pytest.mark.slow
SCREENSHOT = REPO / "docs" / "images" / "live.png"


def write_y4m(video: Path, target: Path, seconds: float = 4.0) -> int:
    """The first ``seconds`` of ``video`` as a YUV4MPEG2 file (4:2:0), Chromium's fake-camera format; frames written."""
    from affectseq.io.video import VideoReader, probe_video

    info = probe_video(video)
    fps = round(info.fps) or 24
    n = 0
    with target.open("wb") as out, VideoReader(video, end_sec=seconds) as reader:
        out.write(f"YUV4MPEG2 W{info.width} H{info.height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        import av

        for frame in reader:
            yuv = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
            out.write(b"FRAME\n" + yuv.tobytes())  # planar Y, U, V
            n += 1
    return n


def _text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def test_live_page_with_a_fake_camera(server: str, tmp_path: Path, clips_dir: Path) -> None:  # noqa: F811
    chrome, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    camera = tmp_path / "camera.y4m"
    assert write_y4m(clips_dir / "WolfgangLanger_Pexels.mp4", camera) >= 90
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    for arg in ("--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}",
                "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chrome-profile'}")
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)

    def wait(condition, timeout: float, what: str):
        try:
            return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d))
        except Exception:
            raise AssertionError(f"timed out waiting for {what} (page message: {_text(driver, 'message')!r}, "
                                 f"label {_text(driver, 'live-label')!r}, fps {_text(driver, 'live-fps')!r}, "
                                 f"latency {_text(driver, 'live-latency')!r})") from None

    try:
        driver.get(server + "/live")
        driver.find_element(By.ID, "live-start").click()
        labels = {"neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", "contempt"}
        wait(lambda d: _text(d, "live-label").lower() in labels, 120, "a label")
        driver.find_element(By.ID, "live-record").click()
        # fps is measured over the last 2 s of answers: give it those seconds with the model warm
        wait(lambda d: float(_text(d, "live-fps").replace("-", "0") or 0) > 5, 60, "more than 5 frames/s")
        latency = float(_text(driver, "live-latency"))
        assert 0 < latency < 2000
        if os.environ.get("AFFECTSEQ_SCREENSHOT") == "1":
            time.sleep(10.0)  # a third of the timeline filled
            _save_screenshot(driver, tmp_path)
        else:
            time.sleep(1.0)
        driver.find_element(By.ID, "live-record").click()
        link = driver.find_element(By.ID, "live-download")
        assert link.is_displayed()
        csv = driver.execute_script("return fetch(arguments[0]).then((r) => r.text())", link.get_attribute("href"))
        header, *rows = csv.strip().split("\n")
        assert header.startswith("frame_idx,time_sec,wall_time,face_id,x1,y1,x2,y2,det_score,label,prob_neutral")
        assert len(rows) >= 5 and all(row.split(",")[9].lower() in labels for row in rows)
        sessions = json.loads(urllib.request.urlopen(server + "/api/live/sessions", timeout=10).read())["sessions"]
        assert len(sessions) == 1 and sessions[0]["frames_processed"] >= 10
        driver.get(server + "/")  # leaving the page closes its socket
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sessions:
            time.sleep(0.25)
            sessions = json.loads(urllib.request.urlopen(server + "/api/live/sessions", timeout=10).read())["sessions"]
        assert sessions == []
    finally:
        driver.quit()


def _save_screenshot(driver, tmp_path: Path) -> None:
    from PIL import Image

    raw = tmp_path / "live_raw.png"
    driver.save_screenshot(str(raw))
    image = Image.open(raw).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    image.save(SCREENSHOT, optimize=True)
