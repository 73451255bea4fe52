"use strict";
// The affectseq serve page: upload, follow the job, then play the video beside its timeline.
// It uses only the documented HTTP API (/docs). window.affectseqChart exposes the chart's state
// (tests and curious users read it); the timeline canvas carries the same as data-* attributes.

const $ = (id) => document.getElementById(id);
const state = { config: null, job: null, series: null, face: 0, pollTimer: null, jobsTimer: null };
let probChart = null, vaChart = null;

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return response.status === 204 ? null : response.json();
}

function showMessage(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

function showProgress(fraction, text) {
  $("progress").hidden = fraction === null;
  if (fraction !== null) {
    $("bar-fill").style.width = `${Math.round(100 * fraction)}%`;
    $("progress-text").textContent = text;
  }
}

function formOptions(form) {
  form.append("detect_every", $("opt-detect-every").value || "8");
  form.append("main_face_only", $("opt-main-face").checked ? "true" : "false");
  if ($("opt-smoothing").value !== "") form.append("smoothing_sec", $("opt-smoothing").value);
  form.append("tta_flip", $("opt-tta-flip").checked ? "true" : "false");
  form.append("overlay", $("opt-overlay").checked ? "true" : "false");
  return form;
}

function mb(bytes) { return `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`; }

function uploadFile(file) {
  showMessage("");
  const limit = state.config ? state.config.max_upload_bytes : Infinity;
  if (file.size > limit) {
    showMessage(`${file.name} is ${mb(file.size)}: larger than this server's upload limit of ${mb(limit)}.`);
    return;
  }
  const form = new FormData();
  form.append("video", file, file.name);
  formOptions(form);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/jobs");
  xhr.upload.onprogress = (ev) => {
    if (ev.lengthComputable) showProgress(0.999 * ev.loaded / ev.total, `uploading ${file.name}: ${Math.floor(100 * ev.loaded / ev.total)}%`);
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status === 201) { refreshJobs(); openJob(body.id); return; }
    showProgress(null);
    showMessage(body.detail || `upload failed (HTTP ${xhr.status})`);
  };
  xhr.onerror = () => { showProgress(null); showMessage("upload failed: the server closed the connection"); };
  showProgress(0, `uploading ${file.name}`);
  xhr.send(form);
}

async function trySample() {
  showMessage("");
  try {
    const job = await api("/api/jobs/sample", { method: "POST", body: formOptions(new FormData()) });
    refreshJobs();
    openJob(job.id);
  } catch (err) { showMessage(err.message); }
}

function openJob(id) {
  clearTimeout(state.pollTimer);
  if (location.hash !== `#job=${id}`) history.replaceState(null, "", `#job=${id}`);
  pollJob(id);
}

async function pollJob(id) {
  let job;
  try { job = await api(`/api/jobs/${encodeURIComponent(id)}`); } catch (err) {
    showProgress(null); showMessage(err.message); return;
  }
  if (location.hash !== `#job=${id}`) return;  // the user opened another job meanwhile
  const changed = !state.job || state.job.id !== job.id || state.job.status !== job.status;
  state.job = job;
  markCurrent();
  if (job.status === "queued" || job.status === "running") {
    $("result").hidden = true;
    showMessage("");
    const text = job.status === "queued" ? `${job.name}: waiting for a free worker`
      : `${job.name}: ${job.stage} ${Math.round(100 * job.progress)}%`;
    showProgress(job.progress, text);
    state.pollTimer = setTimeout(() => pollJob(id), 600);
  } else if (job.status === "failed") {
    showProgress(null);
    $("result").hidden = true;
    showMessage(job.error);
  } else if (changed) {
    showProgress(null);
    showMessage("");
    refreshJobs();
    await showResult(job);
  }
}

function describe(job) {
  const s = job.summary || {}, v = job.video || {};
  const parts = [];
  if (v.duration_sec) parts.push(`${v.duration_sec.toFixed(1)} s, ${v.width}x${v.height}, ${(v.fps || 0).toFixed(2)} fps`);
  if (s.frames_processed !== undefined) parts.push(`${s.frames_processed} frames, ${s.frames_with_face} with a face`);
  if (s.dominant_expression) parts.push(`mostly ${s.dominant_expression}`);
  if (s.model) parts.push(`model ${s.model.id}`);
  if (s.processing && s.processing.fps) parts.push(`${s.processing.fps} frames/s`);
  return parts.join(" · ");
}

async function showResult(job) {
  const base = `/api/jobs/${job.id}`;
  $("result-title").textContent = job.name;
  $("result-meta").textContent = describe(job);
  const hasOverlay = Boolean(job.options && job.options.overlay);
  $("source").querySelector('option[value="overlay.mp4"]').disabled = !hasOverlay;
  $("source").value = hasOverlay ? "overlay.mp4" : "video";
  $("video").src = `${base}/${$("source").value}`;
  const links = [["frames.csv", "CSV"], ["frames.parquet", "Parquet"], ["summary.json", "JSON summary"],
    ["timeline.png", "timeline PNG"]];
  if (hasOverlay) links.push(["overlay.mp4", "overlay video"]);
  $("downloads").replaceChildren(...links.map(([file, label]) => {
    const a = document.createElement("a");
    a.href = `${base}/${file}`;
    a.download = "";
    a.className = "button";
    a.dataset.file = file;
    a.textContent = `⬇ ${label}`;
    return a;
  }));
  state.series = await api(`${base}/series.json`);
  const faces = state.series.faces;
  $("face").replaceChildren(...faces.map((f, i) => {
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = `face ${f.face_id} (${f.frames} frames)`;
    return o;
  }));
  $("face-label").hidden = faces.length < 2;
  $("result").hidden = false;
  if (!faces.length) showMessage("No face was found in this video: every frame is listed without predictions.");
  drawFace(0);
}

function duration() {
  const v = (state.job && state.job.video) || {};
  const media = $("video").duration;
  return Math.max(v.duration_sec || 0, Number.isFinite(media) ? media : 0);
}

function drawFace(index) {
  state.face = index;
  const series = state.series, face = series.faces[index];
  const classes = series.classes;
  probChart.setData(series.time_sec, classes.map((c, i) => ({
    name: c, color: TimelineChart.colorFor(c, i), values: face ? face.probs[c] : [],
  })), duration());
  $("va").hidden = !series.has_va;
  if (series.has_va) {
    vaChart.setData(series.time_sec, ["valence", "arousal"].map((d, i) => ({
      name: d, color: TimelineChart.colorFor(d, i), values: face ? face[d] : [],
    })), duration());
  }
  const names = classes.concat(series.has_va ? ["valence", "arousal"] : []);
  $("legend").replaceChildren(...names.map((c, i) => {
    const span = document.createElement("span");
    span.innerHTML = `<i style="background:${TimelineChart.colorFor(c, i)}"></i>`;
    span.append(c);
    span.onclick = () => {
      const chart = classes.includes(c) ? probChart : vaChart;
      chart.toggle(c);
      span.classList.toggle("off");
      exposeState();
    };
    return span;
  }));
  const share = face ? face.share : {};
  const order = classes.slice().sort((a, b) => (share[b] || 0) - (share[a] || 0));
  $("shares").replaceChildren(...order.map((c) => {
    const row = document.createElement("div");
    row.className = "row";
    const pct = 100 * (share[c] || 0);
    row.innerHTML = `<span></span><div class="fill" style="width:${pct}%;background:${TimelineChart.colorFor(c, classes.indexOf(c))}"></div><span>${pct.toFixed(1)}%</span>`;
    row.firstChild.textContent = c;
    return row;
  }));
  exposeState();
}

function exposeState() {
  const series = state.series, face = series ? series.faces[state.face] : null;
  const chart = {
    jobId: state.job ? state.job.id : null,
    classes: series ? series.classes.slice() : [],
    seriesCount: probChart.visibleSeries().length,
    points: probChart.times.length,
    tMin: probChart.tMin,
    tMax: probChart.tMax,
    faceId: face ? face.face_id : null,
    faces: series ? series.faces.length : 0,
    hasVa: series ? series.has_va : false,
    cursor: probChart.cursor,
    timeToX: (t) => probChart.timeToX(t),
  };
  window.affectseqChart = chart;
  const d = $("timeline").dataset;
  Object.assign(d, { jobId: chart.jobId, classes: chart.classes.join(","), seriesCount: chart.seriesCount,
    points: chart.points, tMin: chart.tMin, tMax: chart.tMax, faceId: chart.faceId, ready: "1" });
}

function followPlayhead() {
  const t = $("video").currentTime;
  probChart.setCursor(t);
  if (state.series && state.series.has_va) vaChart.setCursor(t);
  if (window.affectseqChart) window.affectseqChart.cursor = t;
  if (!$("video").paused) requestAnimationFrame(followPlayhead);
}

function seek(t) {
  const video = $("video");
  video.currentTime = t;
  followPlayhead();
}

function markCurrent() {
  for (const li of $("job-list").children) li.classList.toggle("current", state.job && li.dataset.id === state.job.id);
}

let jobsRequest = 0;

async function refreshJobs() {
  clearTimeout(state.jobsTimer);
  const mine = ++jobsRequest;
  let jobs = [];
  try { jobs = (await api("/api/jobs")).jobs; } catch (err) { showMessage(err.message); return; }
  if (mine !== jobsRequest) return;  // a newer refresh is under way: never paint older data over it
  $("no-jobs").hidden = jobs.length > 0;
  $("job-list").replaceChildren(...jobs.map((job) => {
    const li = document.createElement("li");
    li.dataset.id = job.id;
    li.dataset.status = job.status;
    const name = document.createElement("a");
    name.textContent = job.name;
    name.title = job.error || job.name;
    name.onclick = () => openJob(job.id);
    const status = document.createElement("span");
    status.className = job.status;
    status.textContent = job.status === "running" ? `running ${Math.round(100 * job.progress)}%` : job.status;
    const when = document.createElement("span");
    when.className = "hint";
    when.textContent = new Date(job.created * 1000).toLocaleString();
    const del = document.createElement("button");
    del.textContent = "×";
    del.title = "delete this job and its files";
    del.onclick = () => deleteJob(job);
    li.append(name, status, when, del);
    return li;
  }));
  markCurrent();
  if (jobs.some((j) => j.status === "queued" || j.status === "running")) {
    state.jobsTimer = setTimeout(refreshJobs, 2000);
  }
}

async function deleteJob(job) {
  if (!confirm(`Delete ${job.name} and its results?`)) return;
  try { await api(`/api/jobs/${job.id}`, { method: "DELETE" }); } catch (err) { showMessage(err.message); }
  if (state.job && state.job.id === job.id) {
    state.job = null;
    $("result").hidden = true;
    showProgress(null);
    $("video").removeAttribute("src");
    history.replaceState(null, "", location.pathname);
  }
  refreshJobs();
}

function setupDrop() {
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer.files.length) uploadFile(ev.dataTransfer.files[0]);
  });
  // A file dropped outside the zone would make the browser navigate away from the page.
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => ev.preventDefault());
  $("file").addEventListener("change", () => {
    if ($("file").files.length) uploadFile($("file").files[0]);
    $("file").value = "";
  });
  $("sample").addEventListener("click", trySample);
}

function setupPlayer() {
  const video = $("video");
  for (const name of ["play", "seeked", "timeupdate", "loadedmetadata"]) video.addEventListener(name, followPlayhead);
  video.addEventListener("loadedmetadata", () => { if (state.series) drawFace(state.face); });
  video.addEventListener("error", () => {
    if ($("source").value === "video" && state.job && state.job.options.overlay) {
      showMessage("This browser cannot play the original file; showing the annotated overlay instead.");
      $("source").value = "overlay.mp4";
      video.src = `/api/jobs/${state.job.id}/overlay.mp4`;
    }
  });
  $("source").addEventListener("change", () => {
    const t = video.currentTime;
    video.src = `/api/jobs/${state.job.id}/${$("source").value}`;
    video.addEventListener("loadedmetadata", () => { video.currentTime = t; }, { once: true });
  });
  $("face").addEventListener("change", () => drawFace(Number($("face").value)));
  probChart = new TimelineChart($("timeline"), { yMin: 0, yMax: 1, yTicks: [0, 0.5, 1], onSeek: seek });
  vaChart = new TimelineChart($("va"), { yMin: -1, yMax: 1, yTicks: [-1, 0, 1], onSeek: seek });
  window.addEventListener("resize", () => { probChart.draw(); vaChart.draw(); });
}

async function init() {
  setupDrop();
  setupPlayer();
  try {
    state.config = await api("/api/config");
    $("model-name").textContent = `model: ${state.config.model}`;
    $("limit-hint").textContent += ` Upload limit ${mb(state.config.max_upload_bytes)}.`;
  } catch (err) { showMessage(err.message); }
  await refreshJobs();
  const match = location.hash.match(/^#job=([A-Za-z0-9_-]+)$/);
  if (match) openJob(match[1]);
}

init();
