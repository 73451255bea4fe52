"""Serving overhead of ``affectseq serve``, measured in one run.

* wall time of one job through the HTTP API (upload -> status ``done``, polled
  every 0.1 s) vs ``affectseq predict`` on the same clip with the same options
  (a fresh process: interpreter start and model load included, as a user pays
  them), alternated ``--repeat`` times, best of each; also vs the pipeline's own
  seconds inside ``predict`` (``summary.json``), which isolates the server's cost;
* memory: the server's RSS after the 1st and the 20th job of a short clip
  (jobs run one after another; growth must stay under 10%);
* and that the job's ``frames.csv`` is byte-identical to ``predict``'s.

    nice -n 10 python benchmarks/serve_overhead.py [--clip examples/sample.mp4] [--jobs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHORT_CLIP = REPO.parent / "shared" / "clips" / "single_face.mp4"


def rss_mb(pid: int) -> float:
    """Resident set size of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def post_video(url: str, clip: Path, fields: dict[str, str]) -> dict:
    """POST ``clip`` as multipart ``video`` with ``fields``; the created job."""
    boundary = secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{clip.name}"\r\n'
                 "Content-Type: video/mp4\r\n\r\n".encode() + clip.read_bytes() + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/api/jobs", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def run_job(url: str, clip: Path, fields: dict[str, str]) -> tuple[float, dict]:
    """Seconds from the start of the upload to ``done``, and the finished job."""
    start = time.perf_counter()
    job = post_video(url, clip, fields)
    while job["status"] not in ("done", "failed"):
        time.sleep(0.1)
        job = get_json(f"{url}/api/jobs/{job['id']}")
    if job["status"] != "done":
        raise RuntimeError(f"job failed: {job['error']}")
    return time.perf_counter() - start, job


def run_predict(clip: Path, out: Path, overlay: bool) -> tuple[float, dict]:
    """Wall seconds of ``affectseq predict`` in a fresh process, and its summary."""
    cmd = [sys.executable, "-m", "affectseq", "predict", str(clip), "-o", str(out), "--no-progress", "--overwrite"]
    start = time.perf_counter()
    subprocess.run(cmd + (["--overlay"] if overlay else []), check=True, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, json.loads((out / clip.stem / "summary.json").read_text())


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "affectseq", "serve", "--port", str(port),
                             "--data-dir", str(data_dir)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            get_json(f"{url}/api/config")
            return proc, url, time.perf_counter() - start
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=REPO / "examples" / "sample.mp4")
    parser.add_argument("--short-clip", type=Path, default=SHORT_CLIP, help="clip of the memory run")
    parser.add_argument("--jobs", type=int, default=20, help="jobs of the memory run")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each side (best counts)")
    parser.add_argument("--overlay", action="store_true", help="also write overlay.mp4 on both sides")
    parser.add_argument("--json", type=Path, default=Path("/tmp/serve_overhead.json"))
    args = parser.parse_args()
    fields = {"overlay": "true" if args.overlay else "false"}

    with tempfile.TemporaryDirectory(prefix="affectseq-serve-bench-") as tmp:
        work = Path(tmp)
        proc, url, startup = start_server(work / "data")
        try:
            cli, api, cli_pipeline, api_pipeline = [], [], [], []
            for _ in range(args.repeat):  # alternated, so a change in machine load hits both sides
                seconds, summary = run_predict(args.clip, work / "predict", args.overlay)
                cli.append(seconds)
                cli_pipeline.append(summary["processing"]["seconds"])
                seconds, job = run_job(url, args.clip, fields)
                api.append(seconds)
                api_pipeline.append(job["summary"]["processing"]["seconds"])
            with urllib.request.urlopen(f"{url}/api/jobs/{job['id']}/frames.csv") as response:
                identical = response.read() == (work / "predict" / args.clip.stem / "frames.csv").read_bytes()

            rss = []  # after each job
            for _ in range(args.jobs):
                run_job(url, args.short_clip, {"overlay": "false"})
                rss.append(rss_mb(proc.pid))
        finally:
            proc.terminate()
            proc.wait(30)

    result = {
        "clip": str(args.clip.name), "overlay": args.overlay, "load_avg_1min": os.getloadavg()[0],
        "server_startup_sec": round(startup, 2),
        "predict_cli_sec": [round(s, 2) for s in cli], "api_job_sec": [round(s, 2) for s in api],
        "predict_pipeline_sec": cli_pipeline, "api_pipeline_sec": api_pipeline,
        "ratio_api_vs_cli": round(min(api) / min(cli), 3),
        "ratio_api_vs_pipeline": round(min(api) / min(cli_pipeline), 3),
        "frames_csv_identical": identical,
        "rss_after_first_mb": round(rss[0], 1), f"rss_after_{args.jobs}_mb": round(rss[-1], 1),
        "rss_growth": round(rss[-1] / rss[0] - 1, 4),
        "rss_growth_second_half": round(rss[-1] / rss[len(rss) // 2 - 1] - 1, 4),
        "rss_per_job_mb": [round(r, 1) for r in rss],
    }
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"\none job through the API: {min(api):.2f} s vs affectseq predict {min(cli):.2f} s "
          f"(ratio {result['ratio_api_vs_cli']:.2f}); vs the pipeline alone {min(cli_pipeline):.2f} s "
          f"(ratio {result['ratio_api_vs_pipeline']:.2f})")
    print(f"server RSS after 1 job {rss[0]:.0f} MiB, after {args.jobs} jobs {rss[-1]:.0f} MiB "
          f"({100 * result['rss_growth']:+.1f}%)")


if __name__ == "__main__":
    main()
