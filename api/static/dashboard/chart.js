// Losses per epoch as SVG line charts drawn here: a job's loss and validation loss, and a
// sweep's validation loss of every trial.
//
// Why by hand and not a library (uPlot, Chart.js): a run has two series (a sweep a few
// dozen) of at most a few hundred epochs, which ~150 lines of SVG draw crisply at any
// size, with no vendored file, licence or build step to keep, and with elements the
// browser test can check. A library earns its place with long, zoomable time series,
// which we do not have.

import { h, svg } from "./dom.js";

const WIDTH = 900; // viewBox units; the SVG scales to its container
const HEIGHT = 280;
const MARGIN = { left: 56, right: 20, top: 18, bottom: 40 };
const MAX_DOTS = 60; // past this many epochs the dots would merge into the line
// Steps between epoch labels; a job has at most 10,000 epochs (shared/contracts/specs.py).
const EPOCH_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
const SERIES = [
  { key: "loss", label: "loss", className: "loss" },
  { key: "val_loss", label: "validation loss", className: "val-loss" },
];
const LEGEND_ENTRY_W = 125; // viewBox units per legend entry: "validation loss" fits
const LEGEND_ROW_H = 18; // a legend of many series wraps into rows above the plot
const PALETTE_SIZE = 10; // a sweep's trials cycle through classes c0..c9 (dashboard.css)

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
  const series = SERIES.map(({ key, label, className }) => ({ label, className,
    points: points.map((p) => ({ epoch: p.epoch, value: p[key] })) }));
  return lineChart(series, `loss and validation loss over ${points.length} epochs`);
}

/** trials: [{number, best, points: [{epoch, value}]}], each trial's validation loss; the
 * best trial's line is drawn bold. */
export function trialsChart(trials) {
  const series = trials.map((trial) => ({
    label: `trial ${trial.number}${trial.best ? " (best)" : ""}`,
    className: `trial c${trial.number % PALETTE_SIZE}${trial.best ? " best" : ""}`,
    dataset: { trial: trial.number },
    points: trial.points,
  }));
  return lineChart(series, `validation loss of ${trials.length} trials by epoch`);
}

/** series: [{label, className, dataset, points: [{epoch, value}]}], points in epoch order. */
function lineChart(series, description) {
  const values = series.flatMap((s) => s.points.map((p) => p.value)).filter(isNumber);
  if (!values.length) {
    return h("p", { class: "muted chart-empty" }, "The chart appears after the first epoch.");
  }
  let low = Math.min(...values);
  let high = Math.max(...values);
  const pad = (high - low) * 0.08 || 0.5;
  low = Math.max(0, low - pad); // a loss is never negative
  high += pad;
  const epochs = series.flatMap((s) => s.points.map((p) => p.epoch));
  const first = Math.min(...epochs);
  const last = Math.max(...epochs, first + 1);
  const perRow = Math.floor((WIDTH - MARGIN.left - MARGIN.right) / LEGEND_ENTRY_W);
  const rows = Math.ceil(series.length / perRow);
  const top = MARGIN.top + (rows - 1) * LEGEND_ROW_H;

  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - top - MARGIN.bottom;
  const x = (epoch) => MARGIN.left + ((epoch - first) / (last - first)) * plotW;
  const y = (v) => top + (1 - (v - low) / (high - low)) * plotH;

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

  const lines = series.map((one) => {
    const own = one.points.filter((p) => isNumber(p.value));
    if (!own.length) return null;
    const d = own.map((p, i) =>
      `${i ? "L" : "M"}${x(p.epoch).toFixed(1)},${y(p.value).toFixed(1)}`);
    const dots = own.length <= MAX_DOTS ? own.map((p) => svg("circle", {
      cx: x(p.epoch), cy: y(p.value), r: 3.5 },
      svg("title", {}, `epoch ${p.epoch}: ${one.label} ${p.value.toFixed(3)}`))) : [];
    return svg("g", { class: `series ${one.className}`, dataset: one.dataset },
      svg("path", { d: d.join(" "), fill: "none" }), dots);
  });

  // Right-aligned rows of entries, the first row on the plot's top line as before.
  const legend = svg("g", { class: "legend" }, series.map((one, i) => {
    const row = Math.floor(i / perRow);
    const inRow = Math.min(perRow, series.length - row * perRow);
    const left = WIDTH - MARGIN.right - inRow * LEGEND_ENTRY_W + (i % perRow) * LEGEND_ENTRY_W;
    return svg("g", { class: `series ${one.className}`,
      transform: `translate(${left}, ${MARGIN.top - 4 + row * LEGEND_ROW_H})` },
    svg("path", { d: "M0,0 L22,0", fill: "none" }),
    svg("text", { x: 28, y: 4 }, one.label));
  }));

  return svg("svg", {
    class: "loss-chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
    "aria-label": description },
  svg("g", { class: "grid" }, grid),
  svg("line", { class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right,
    y1: HEIGHT - MARGIN.bottom, y2: HEIGHT - MARGIN.bottom }),
  xLabels,
  svg("text", { class: "axis-title", x: MARGIN.left + plotW / 2, y: HEIGHT - 6,
    "text-anchor": "middle" }, "epoch"),
  svg("text", { class: "axis-title", "text-anchor": "middle",
    transform: `translate(14, ${top + plotH / 2}) rotate(-90)` }, "nats per token"),
  lines, legend);
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}
