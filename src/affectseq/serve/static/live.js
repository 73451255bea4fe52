"use strict";
// The /live page: camera frames -> JPEG over a WebSocket (rate-capped, at most MAX_IN_FLIGHT
// unanswered: a frame that cannot be sent in time is skipped, never queued) -> rows back,
// drawn over the video, as readouts and as a scrolling timeline of the main face.

const MAX_IN_FLIGHT = 2;       // frames sent and not answered yet
const IN_FLIGHT_TIMEOUT_MS = 3000;
const SEND_MAX_WIDTH = 640;    // frames are scaled down to this width before JPEG encoding
const JPEG_QUALITY = 0.8;
const HISTORY_SEC = 30;        // the timeline's span
const MAX_RECORDED_ROWS = 500000;

const $ = (id) => document.getElementById(id);
const live = window.affectseqLive = {
  ws: null, stream: null, timer: null, running: false, classes: [], hasVa: false, maxFps: 15,
  inFlight: new Map(), replies: [], latencies: [], history: [], sent: 0, skipped: 0, processed: 0,
  recording: false, recorded: [], lastRows: [], frameSize: [0, 0], downloadUrl: null,
};

function showMessage(text) { $("message").textContent = text; $("message").hidden = !text; }

async function start() {
  showMessage("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showMessage("this browser gives no camera access here (a camera needs http://localhost or https)");
    return;
  }
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ audio: false,
      video: { width: { ideal: 640 }, height: { ideal: 360 } } });
  } catch (err) {
    showMessage(`camera not available: ${err.name}${err.message ? ": " + err.message : ""}`);
    return;
  }
  const video = $("live-video");
  video.srcObject = live.stream;
  await video.play().catch(() => {});
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = live.ws = new WebSocket(`${proto}//${location.host}/api/live`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => { if (live.ws === ws) stop(live.running ? "the connection to the server closed" : ""); };
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
}

function stop(message) {
  live.running = false;
  clearTimeout(live.timer);
  if (live.ws) { const ws = live.ws; live.ws = null; ws.close(); }
  if (live.stream) { live.stream.getTracks().forEach((t) => t.stop()); live.stream = null; }
  live.inFlight.clear();
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
  if (message) showMessage(message);
}

function onMessage(msg) {
  if (msg.type === "ready") {
    live.classes = msg.classes;
    live.hasVa = msg.has_va;
    live.maxFps = msg.max_fps;
    $("live-max-fps").max = msg.max_fps;
    live.running = true;
    $("live-record").disabled = false;
    buildLegend();
    tick();
  } else if (msg.type === "busy" || msg.type === "error") {
    if (msg.type === "busy") stop(msg.message); else showMessage(msg.message);
  } else if (msg.type === "rows") {
    onRows(msg);
  }
}

function tick() {
  if (!live.running) return;
  const fps = Math.max(1, Math.min(live.maxFps, Number($("live-max-fps").value) || live.maxFps));
  live.timer = setTimeout(tick, 1000 / fps);
  const now = performance.now();
  for (const [sentAt] of live.inFlight) if (now - sentAt > IN_FLIGHT_TIMEOUT_MS) live.inFlight.delete(sentAt);
  if (live.inFlight.size >= MAX_IN_FLIGHT || !live.ws || live.ws.readyState !== WebSocket.OPEN) {
    live.skipped++;  // behind: this frame is skipped, not queued
    return;
  }
  sendFrame(now);
}

function sendFrame(capturedAt) {
  const video = $("live-video");
  if (!video.videoWidth) return;
  const scale = Math.min(1, SEND_MAX_WIDTH / video.videoWidth);
  const canvas = live.grab || (live.grab = document.createElement("canvas"));
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  live.inFlight.set(capturedAt, true);
  canvas.toBlob(async (blob) => {
    if (!blob || !live.ws || live.ws.readyState !== WebSocket.OPEN) { live.inFlight.delete(capturedAt); return; }
    const jpeg = new Uint8Array(await blob.arrayBuffer());
    const message = new Uint8Array(8 + jpeg.length);
    new DataView(message.buffer).setFloat64(0, capturedAt, true);
    message.set(jpeg, 8);
    live.ws.send(message);
    live.sent++;
  }, "image/jpeg", JPEG_QUALITY);
}

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function onRows(msg) {
  const now = performance.now();
  live.inFlight.delete(msg.client_ms);
  live.processed++;
  live.latencies.push(now - msg.client_ms);
  if (live.latencies.length > 50) live.latencies.shift();
  live.replies.push(now);
  while (live.replies.length && now - live.replies[0] > 2000) live.replies.shift();
  live.lastRows = msg.rows;
  live.frameSize = [msg.width, msg.height];
  const main = msg.rows.find((r) => r.main) || null;
  $("live-label").textContent = main ? (main.label || "…") : "no face";
  const span = live.replies.length > 1 ? (live.replies[live.replies.length - 1] - live.replies[0]) / 1000 : 0;
  if (span > 0) $("live-fps").textContent = ((live.replies.length - 1) / span).toFixed(1);
  $("live-latency").textContent = Math.round(median(live.latencies));
  $("live-counts").textContent = `${live.processed} processed, ${live.skipped} skipped by this page`;
  const t = now / 1000;
  live.history.push({ t, probs: main && main.label ? live.classes.map((c) => main["prob_" + c.toLowerCase()]) : null });
  while (live.history.length && t - live.history[0].t > HISTORY_SEC) live.history.shift();
  if (live.recording) record(msg.rows);
  drawOverlay();
  drawTimeline();
}

// A cleared canvas at the screen's pixel ratio, drawn in CSS pixels: { ctx, w, h }.
function clearedCanvas(id) {
  const canvas = $(id);
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function drawOverlay() {
  const video = $("live-video");
  const { ctx, w, h } = clearedCanvas("live-overlay");
  const [fw, fh] = live.frameSize;
  if (!fw || !video.videoWidth) return;
  // The video is shown with object-fit: contain; boxes are in the sent frame's pixels.
  const shown = Math.min(w / video.videoWidth, h / video.videoHeight);
  const x0 = (w - video.videoWidth * shown) / 2, y0 = (h - video.videoHeight * shown) / 2;
  const k = shown * video.videoWidth / fw;
  ctx.font = "bold 15px system-ui, sans-serif";
  for (const row of live.lastRows) {
    if (!row.box) continue;
    const [x1, y1, x2, y2] = row.box;
    const color = row.label ? TimelineChart.colorFor(row.label.toLowerCase(), 0) : "#ffffff";
    ctx.strokeStyle = color;
    ctx.lineWidth = row.main ? 3 : 2;
    ctx.strokeRect(x0 + x1 * k, y0 + y1 * k, (x2 - x1) * k, (y2 - y1) * k);
    const p = row.label ? row["prob_" + row.label.toLowerCase()] : null;
    const text = row.label ? `${row.label} ${Math.round(100 * p)}%` : `face ${row.face_id}`;
    const tw = ctx.measureText(text).width + 8;
    ctx.fillStyle = color;
    ctx.fillRect(x0 + x1 * k, y0 + y1 * k - 20, tw, 20);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x0 + x1 * k + 4, y0 + y1 * k - 5);
  }
}

function drawTimeline() {
  const { ctx, w, h } = clearedCanvas("live-timeline");
  const m = { left: 34, right: 8, top: 8, bottom: 20 };
  const pw = w - m.left - m.right, ph = h - m.top - m.bottom;
  const now = performance.now() / 1000;
  const x = (t) => m.left + pw * (1 - (now - t) / HISTORY_SEC);
  const y = (p) => m.top + ph * (1 - p);
  ctx.strokeStyle = "#d0d7de";
  ctx.fillStyle = "#656d76";
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (const p of [0, 0.5, 1]) {
    ctx.beginPath(); ctx.moveTo(m.left, y(p)); ctx.lineTo(w - m.right, y(p)); ctx.stroke();
    ctx.fillText(p.toFixed(1), 4, y(p) + 4);
  }
  for (let s = 0; s <= HISTORY_SEC; s += 5) ctx.fillText(s ? `-${s} s` : "now", x(now - s) - 12, h - 5);
  live.classes.forEach((name, j) => {
    ctx.strokeStyle = TimelineChart.colorFor(name.toLowerCase(), j);
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    let pen = false;
    for (const point of live.history) {
      if (!point.probs) { pen = false; continue; }  // a gap: no main face on that frame
      const px = x(point.t), py = y(point.probs[j]);
      if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      pen = true;
    }
    ctx.stroke();
  });
}

function buildLegend() {
  const legend = $("legend");
  legend.textContent = "";
  live.classes.forEach((name, j) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = TimelineChart.colorFor(name.toLowerCase(), j);
    item.append(swatch, name.toLowerCase());
    legend.append(item);
  });
}

function csvColumns() {
  const probs = live.classes.map((c) => "prob_" + c.toLowerCase());
  return ["frame_idx", "time_sec", "wall_time", "face_id", "x1", "y1", "x2", "y2", "det_score", "label", ...probs,
          ...(live.hasVa ? ["valence", "arousal"] : [])];
}

function record(rows) {
  for (const row of rows) {
    if (live.recorded.length >= MAX_RECORDED_ROWS) { toggleRecord(); showMessage("recording stopped: row limit reached"); return; }
    const box = row.box || [null, null, null, null];
    const flat = { ...row, x1: box[0], y1: box[1], x2: box[2], y2: box[3] };
    live.recorded.push(csvColumns().map((c) => (flat[c] === null || flat[c] === undefined ? "" : flat[c])).join(","));
  }
  $("live-recorded").textContent = live.recorded.length;
}

function toggleRecord() {
  live.recording = !live.recording;
  const button = $("live-record");
  button.classList.toggle("on", live.recording);
  button.textContent = live.recording ? "Stop recording" : "Record";
  if (live.recording) {
    live.recorded = [];
    $("live-download").hidden = true;
    $("live-recorded").textContent = "0";
  } else {
    if (live.downloadUrl) URL.revokeObjectURL(live.downloadUrl);
    const text = [csvColumns().join(","), ...live.recorded].join("\n") + "\n";
    live.downloadUrl = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    $("live-download").href = live.downloadUrl;
    $("live-download").hidden = false;
  }
}

$("live-start").addEventListener("click", start);
$("live-stop").addEventListener("click", () => stop(""));
$("live-record").addEventListener("click", toggleRecord);
window.addEventListener("pagehide", () => stop(""));
