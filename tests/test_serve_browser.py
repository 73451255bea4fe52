"""End to end in a real browser: ``affectseq serve`` as a user meets it.

Starts the server as a subprocess on a free port with a temporary data folder,
drives headless Chromium (Selenium with the system chromedriver) to upload the
sample clip, waits for the result page, checks the chart (one series per class of the default model -- 8 for the FER+ v2 model -- over
the clip's duration), clicks the timeline at ~15 s and checks the video went
there, and compares the downloaded CSV with ``affectseq predict``'s on the same
file. ``AFFECTSEQ_SCREENSHOT=1`` also refreshes docs/images/serve.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from affectseq.features.shipped import model_card

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.mp4"
SCREENSHOT = REPO / "docs" / "images" / "serve.png"
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--mute-audio", "--window-size=1200,1120")


def _browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or a loud skip naming what is missing."""
    chrome = os.environ.get("AFFECTSEQ_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = os.environ.get("AFFECTSEQ_CHROMEDRIVER") or shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        chrome = None
    if not chrome or not driver:
        reason = ("BROWSER TEST SKIPPED: no headless Chromium + chromedriver + selenium found "
                  f"(chromium={chrome}, chromedriver={driver}); install them: apt-get install -y chromium "
                  "chromium-driver && pip install selenium")
        warnings.warn(reason)
        pytest.skip(reason)
    return chrome, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    """``affectseq serve`` on a free localhost port; yields its URL."""
    pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "affectseq", "serve", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/config", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("server did not start:\n" + (tmp_path / "serve.log").read_text())
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait(driver, condition, timeout: float, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))
    except Exception:
        message = driver.execute_script("return document.getElementById('message').textContent")
        raise AssertionError(f"timed out waiting for {what} (page message: {message!r})") from None


def _save_screenshot(driver, tmp_path: Path) -> None:
    """A small palette PNG; written to docs/images only when asked, so test runs leave the tree clean."""
    from PIL import Image

    raw = tmp_path / "serve_raw.png"
    driver.save_screenshot(str(raw))
    image = Image.open(raw).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    target = SCREENSHOT if os.environ.get("AFFECTSEQ_SCREENSHOT") == "1" else tmp_path / "serve.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target, optimize=True)


def test_upload_watch_seek_download(server: str, tmp_path: Path) -> None:
    chrome, chromedriver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chrome-profile'}")
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get(server + "/")
        driver.find_element(By.ID, "file").send_keys(str(SAMPLE))  # what the file picker does
        _wait(driver, lambda d: d.execute_script(
            "return document.getElementById('timeline').dataset.ready === '1'"), 900, "the result view")

        chart = driver.execute_script("const c = window.affectseqChart; return {classes: c.classes, "
                                      "series: c.seriesCount, tMin: c.tMin, tMax: c.tMax, points: c.points}")
        n_classes = len(model_card("default")["expr_classes"])  # 8: the seven basic expressions + Contempt
        assert chart["series"] == n_classes and len(chart["classes"]) == n_classes, chart
        assert chart["classes"] == [c.lower() for c in model_card("default")["expr_classes"]], chart
        assert chart["tMin"] == 0 and chart["tMax"] == pytest.approx(19.7, abs=0.3), chart
        assert chart["points"] == 472, chart
        assert driver.find_element(By.ID, "timeline").get_attribute("data-series-count") == str(n_classes)

        _wait(driver, lambda d: d.execute_script("return document.getElementById('video').readyState >= 1"),
              60, "the video's metadata")
        canvas = driver.find_element(By.ID, "timeline")
        x = driver.execute_script("return window.affectseqChart.timeToX(15)")
        ActionChains(driver).move_to_element_with_offset(canvas, int(x - canvas.size["width"] / 2), 0).click().perform()
        _wait(driver, lambda d: abs(d.execute_script("return document.getElementById('video').currentTime") - 15)
              < 0.5, 30, "the video to seek to 15 s")
        cursor = driver.execute_script("return window.affectseqChart.cursor")
        assert cursor == pytest.approx(15, abs=0.5)
        _wait(driver, lambda d: d.execute_script("return !document.getElementById('video').seeking"), 30, "seek")
        driver.execute_script("document.getElementById('result').scrollIntoView()")
        time.sleep(0.5)  # let the seeked frame paint before the screenshot
        _save_screenshot(driver, tmp_path)

        csv_url = driver.find_element(By.CSS_SELECTOR, 'a[data-file="frames.csv"]').get_attribute("href")
        served = urllib.request.urlopen(csv_url, timeout=30).read()
        _wait(driver, lambda d: [li.get_attribute("data-status") for li in
                                 d.find_elements(By.CSS_SELECTOR, "#job-list li")] == ["done"], 30, "the jobs list")
    finally:
        driver.quit()

    out = tmp_path / "predict"
    done = subprocess.run([sys.executable, "-m", "affectseq", "predict", str(SAMPLE), "-o", str(out), "--no-progress"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert served == (out / "sample" / "frames.csv").read_bytes()
