"use strict";
// A small canvas line chart for time series: lines with gaps (null values), a playhead cursor,
// click-to-seek. Hand-written so the page loads nothing from the internet.

const SERIES_COLORS = {
  neutral: "#8c959f", anger: "#cf222e", disgust: "#2da44e", fear: "#8250df", happiness: "#d4a72c",
  sadness: "#0969da", surprise: "#e16f24", other: "#57606a", contempt: "#bf3989",
  valence: "#1a7f37", arousal: "#bc4c00",
};
const FALLBACK_COLORS = ["#0550ae", "#a40e26", "#116329", "#6639ba", "#953800", "#1b7c83"];

class TimelineChart {
  /** canvas: the element; opts: {yMin, yMax, yTicks, onSeek(t)} */
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts;
    this.times = [];
    this.series = [];      // [{name, color, values}]
    this.hidden = new Set();
    this.tMin = 0;
    this.tMax = 1;
    this.cursor = null;
    this.margin = { left: 40, right: 10, top: 8, bottom: 22 };
    canvas.addEventListener("click", (ev) => {
      const rect = canvas.getBoundingClientRect();
      const t = this.xToTime(ev.clientX - rect.left);
      if (t !== null && this.opts.onSeek) this.opts.onSeek(t);
    });
  }

  static colorFor(name, i) {
    return SERIES_COLORS[name] || FALLBACK_COLORS[i % FALLBACK_COLORS.length];
  }

  setData(times, series, tMax) {
    this.times = times;
    this.series = series;
    this.tMin = 0;
    this.tMax = Math.max(tMax || 0, times.length ? times[times.length - 1] : 0, 1e-3);
    this.draw();
  }

  visibleSeries() { return this.series.filter((s) => !this.hidden.has(s.name)); }

  toggle(name) {
    if (this.hidden.has(name)) this.hidden.delete(name); else this.hidden.add(name);
    this.draw();
  }

  plotWidth() { return this.canvas.clientWidth - this.margin.left - this.margin.right; }

  /** x in CSS pixels from the canvas's left edge for time t (seconds). */
  timeToX(t) {
    return this.margin.left + (t - this.tMin) / (this.tMax - this.tMin) * this.plotWidth();
  }

  xToTime(x) {
    const w = this.plotWidth();
    if (w <= 0) return null;
    const f = (x - this.margin.left) / w;
    return Math.min(Math.max(f, 0), 1) * (this.tMax - this.tMin) + this.tMin;
  }

  setCursor(t) {
    if (t === this.cursor) return;
    this.cursor = t;
    this.draw();
  }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const cssW = c.clientWidth, cssH = c.clientHeight || Number(c.getAttribute("height"));
    if (!cssW) return;
    if (c.width !== Math.round(cssW * dpr) || c.height !== Math.round(cssH * dpr)) {
      c.width = Math.round(cssW * dpr);
      c.height = Math.round(cssH * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cssW, cssH);
    const m = this.margin, h = cssH - m.top - m.bottom;
    const { yMin, yMax } = this.opts;
    const yOf = (v) => m.top + (1 - (v - yMin) / (yMax - yMin)) * h;
    // Axes: y ticks and a time axis with round steps.
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#656d76";
    g.strokeStyle = "#eaeef2";
    g.lineWidth = 1;
    for (const v of this.opts.yTicks) {
      const y = Math.round(yOf(v)) + 0.5;
      g.beginPath(); g.moveTo(m.left, y); g.lineTo(cssW - m.right, y); g.stroke();
      g.textAlign = "right"; g.textBaseline = "middle";
      g.fillText(String(v), m.left - 5, y);
    }
    const span = this.tMax - this.tMin;
    const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => span / s <= 12) || 7200;
    g.textAlign = "center"; g.textBaseline = "top";
    for (let t = 0; t <= this.tMax + 1e-9; t += step) {
      const x = Math.round(this.timeToX(t)) + 0.5;
      g.beginPath(); g.moveTo(x, m.top); g.lineTo(x, m.top + h); g.stroke();
      g.fillText(formatTime(t), x, m.top + h + 4);
    }
    // Lines, broken wherever a value is null (face not in the frame).
    g.lineWidth = 1.6;
    g.lineJoin = "round";
    for (const s of this.visibleSeries()) {
      g.strokeStyle = s.color;
      g.beginPath();
      let pen = false;
      for (let i = 0; i < this.times.length; i++) {
        const v = s.values[i];
        if (v === null || v === undefined) { pen = false; continue; }
        const x = this.timeToX(this.times[i]), y = yOf(v);
        if (pen) g.lineTo(x, y); else g.moveTo(x, y);
        pen = true;
      }
      g.stroke();
    }
    if (this.cursor !== null) {
      const x = Math.round(this.timeToX(Math.min(this.cursor, this.tMax))) + 0.5;
      g.strokeStyle = "#1f2328";
      g.lineWidth = 1.5;
      g.beginPath(); g.moveTo(x, m.top); g.lineTo(x, m.top + h); g.stroke();
    }
  }
}

function formatTime(t) {
  const s = Math.round(t * 10) / 10;
  if (s < 60) return `${s}s`;
  const min = Math.floor(s / 60), sec = Math.round(s - 60 * min);
  return `${min}:${String(sec).padStart(2, "0")}`;
}
