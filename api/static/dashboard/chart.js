// Loss and validation loss per epoch, as an SVG line chart drawn here.
//
// Why by hand and not a library (uPlot, Chart.js): a run has two series of at most a few
// hundred epochs, which ~100 lines of SVG draw crisply at any size, with no vendored file,
// licence or build step to keep, and with elements the browser test can check. A library
// earns its place with long, zoomable time series, which we do not have.

import { h, svg } from "./dom.js";

const WIDTH = 900; // viewBox units; the SVG scales to its container
const HEIGHT = 280;
const MARGIN = { left: 56, right: 20, top: 18, bottom: 40 };
const MAX_DOTS = 60; // past this many epochs the dots would merge into the line
// Steps between epoch labels; a job has at most 10,000 epochs (shared/specs.py).
const EPOCH_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
const SERIES = [
  { key: "loss", label: "loss", className: "loss" },
  { key: "val_loss", label: "validation loss", className: "val-loss" },
];

/** A step of 1, 2, 2.5 or 5 times a power of ten, giving about `count` intervals. */
function niceStep(span, count) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].find((m) => m * power >= raw) * power;
}

/** The decimals a step needs: 0.25 needs 2, 0.5 needs 1, 2 needs none. */
function decimals(step) {
  let digits = 0;
  const off = (d) => Math.abs(Math.round(step * 10 ** d) - step * 10 ** d);
  while (digits < 6 && off(digits) > 1e-6) digits++;
  return digits;
}

function ticks(low, high, count) {
  const step = niceStep(high - low, count);
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step / 1e6; v += step) out.push(v);
  return { values: out, step };
}

/** points: [{epoch, loss, val_loss}] in epoch order. */
export function lossChart(points) {
  const values = points.flatMap((p) => SERIES.map((s) => p[s.key]))
    .filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!values.length) {
    return h("p", { class: "muted chart-empty" }, "The chart appears after the first epoch.");
  }
  let low = Math.min(...values);
  let high = Math.max(...values);
  const pad = (high - low) * 0.08 || 0.5;
  low = Math.max(0, low - pad); // a loss is never negative
  high += pad;
  const first = points[0].epoch;
  const last = Math.max(points[points.length - 1].epoch, first + 1);

  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (epoch) => MARGIN.left + ((epoch - first) / (last - first)) * plotW;
  const y = (v) => MARGIN.top + (1 - (v - low) / (high - low)) * plotH;

  const yTicks = ticks(low, high, 4);
  const digits = decimals(yTicks.step);
  // Epochs are whole numbers: label multiples of a step of 1, 2 or 5 times a power of
  // ten, and the first epoch unless a label sits right beside it.
  const xStep = EPOCH_STEPS.find((step) => step >= (last - first) / 6);
  const xTicks = [];
  for (let e = Math.ceil(first / xStep) * xStep; e <= last; e += xStep) xTicks.push(e);
  if (!xTicks.length || xTicks[0] - first > xStep / 2) xTicks.unshift(first);

  const grid = yTicks.values.map((v) => svg("g", { class: "tick" },
    svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }),
    svg("text", { x: MARGIN.left - 8, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(digits))));
  const xLabels = xTicks.map((e) => svg("text", {
    class: "tick", x: x(e), y: HEIGHT - MARGIN.bottom + 18, "text-anchor": "middle" }, e));

  const lines = SERIES.map((series) => {
    const own = points.filter((p) => Number.isFinite(p[series.key]));
    if (!own.length) return null;
    const d = own.map((p, i) =>
      `${i ? "L" : "M"}${x(p.epoch).toFixed(1)},${y(p[series.key]).toFixed(1)}`);
    const dots = own.length <= MAX_DOTS ? own.map((p) => svg("circle", {
      cx: x(p.epoch), cy: y(p[series.key]), r: 3.5 },
      svg("title", {}, `epoch ${p.epoch}: ${series.label} ${p[series.key].toFixed(3)}`))) : [];
    return svg("g", { class: `series ${series.className}` },
      svg("path", { d: d.join(" "), fill: "none" }), dots);
  });

  const legend = svg("g", { class: "legend" }, SERIES.map((series, i) => svg("g", {
    class: `series ${series.className}`,
    transform: `translate(${WIDTH - MARGIN.right - 250 + i * 120}, ${MARGIN.top - 4})` },
  svg("path", { d: "M0,0 L22,0", fill: "none" }),
  svg("text", { x: 28, y: 4 }, series.label))));

  return svg("svg", {
    class: "loss-chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
    "aria-label": `loss and validation loss over ${points.length} epochs` },
  svg("g", { class: "grid" }, grid),
  svg("line", { class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right,
    y1: HEIGHT - MARGIN.bottom, y2: HEIGHT - MARGIN.bottom }),
  xLabels,
  svg("text", { class: "axis-title", x: MARGIN.left + plotW / 2, y: HEIGHT - 6,
    "text-anchor": "middle" }, "epoch"),
  svg("text", { class: "axis-title", "text-anchor": "middle",
    transform: `translate(14, ${MARGIN.top + plotH / 2}) rotate(-90)` }, "nats per token"),
  lines, legend);
}
