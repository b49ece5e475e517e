// One sweep: its trials (settings, status, rung, best validation loss, the best marked,
// each linked to its job), every trial's validation loss on one chart, and cancel.
//
// Live from the sweep's event stream, which brings every event from the first (so a
// finished sweep draws the same way): each trial_reported event is a point of its
// trial's curve, and any event rereads the sweep for the table.

import { get } from "../api.js";
import { trialsChart } from "../chart.js";
import { h } from "../dom.js";
import { duration, num, secondsBetween, when } from "../format.js";
import { followSweepEvents } from "../sse.js";
import { canceller, facts, idLink, idText, problemBox, section, specTable, statusPill } from "../ui.js";

const DRAW_MS = 100; // events replayed at once (a finished sweep's) draw the chart once

export async function render(root, { params: [sweepId], signal }) {
  const path = `/v1/sweeps/${encodeURIComponent(sweepId)}`;
  let sweep = await get(path, { signal });
  const head = h("section", { class: "card" });
  const rows = h("tbody", {});
  const chart = h("div", { class: "chart" });
  const streamNote = h("div", {});
  const curves = new Map(); // trial number -> Map(epoch -> validation loss)
  let shown = null; // the sweep as last drawn: a read that changed nothing redraws nothing
  const cancel = canceller(path, { signal, where: head, done: (answer) => {
    sweep = answer;
    show();
  } });
  root.append(head,
    section("Trials", streamNote, h("div", { class: "table-scroll" }, h("table", { class: "trials" },
      h("thead", {}, h("tr", {}, ["Trial", "Settings", "Status", "Rung", "Best val loss", "Job"]
        .map((label) => h("th", {}, label)))),
      rows))),
    section("Validation loss per epoch", chart),
    section("Search", searchView(sweep)));
  show();

  function show() {
    const now = JSON.stringify(sweep);
    if (now === shown) return;
    shown = now;
    head.replaceChildren(...header(sweep, cancel));
    rows.replaceChildren(...(sweep.trials.length
      ? sweep.trials.map((trial) => trialRow(trial, sweep.best))
      : [h("tr", { class: "empty" }, h("td", { colSpan: 6 }, "No trial yet."))]));
    drawChart();
  }

  function drawChart() {
    chart.replaceChildren(trialsChart([...curves].sort(([a], [b]) => a - b).map(
      ([number, points]) => ({ number, best: sweep.best?.number === number,
        points: [...points].sort(([a], [b]) => a - b).map(([epoch, value]) => ({ epoch, value })),
      }))));
  }

  // One read of the sweep in flight at most, and one more after it if events came meanwhile.
  let reading = null;
  let readAgain = false;
  function refresh() {
    if (reading) { readAgain = true; return; }
    reading = get(path, { signal })
      .then((latest) => { sweep = latest; show(); })
      .catch((error) => { if (!signal.aborted) streamNote.replaceChildren(problemBox(error)); })
      .finally(() => {
        reading = null;
        if (readAgain && !signal.aborted) { readAgain = false; refresh(); }
      });
  }

  let drawTimer = null;
  signal.addEventListener("abort", () => clearTimeout(drawTimer));
  function onEvent(event) {
    if (event.type === "trial_reported") {
      // A resumed attempt reports its redone epoch again: the same point, not a second.
      const { number, rung, val_loss: value } = event.data;
      if (!curves.has(number)) curves.set(number, new Map());
      curves.get(number).set(rung, value);
      clearTimeout(drawTimer);
      drawTimer = setTimeout(drawChart, DRAW_MS);
    }
    refresh();
  }

  followSweepEvents(sweepId, onEvent, { signal, onConnection: (connected) => {
    streamNote.replaceChildren(connected ? "" : h("p", { class: "muted small" },
      "The event stream was interrupted; reconnecting…"));
  } }).catch((error) => streamNote.replaceChildren(problemBox(error)));
}

function header(sweep, cancel) {
  const best = sweep.best;
  return [
    h("div", { class: "page-head" },
      h("h1", {}, "Sweep ", h("span", { class: "id" }, sweep.id)),
      statusPill(sweep.status), h("span", { class: "spacer" }),
      sweep.status === "running" ? h("button", { class: "danger", type: "button", id: "cancel",
        onclick: (event) => cancel(event.currentTarget) }, "Cancel sweep") : null),
    facts([
      ["Trials made", `${sweep.trials_made} of ${sweep.max_trials}`],
      ["Best trial", best ? `${best.number}${best.final ? " continued" : ""} · validation loss ${num(best.val_loss, 4)}` : "–"],
      ["Best model", best ? idLink("models", best.model_id) : null],
      ["Sampler", sweep.sampler === "grid" ? "grid" : "TPE"],
      ["Budget per trial", duration(sweep.trial_seconds)],
      ["Total budget", duration(sweep.budget_seconds)],
      ["Trials at once", sweep.parallel],
      ["Final phase", finalPhase(sweep)],
      ["Corpus", idText(sweep.corpus_id)],
      ["Created", when(sweep.created_at)],
      ["Finished", sweep.finished_at ? when(sweep.finished_at) : null],
      ["Duration", duration(secondsBetween(sweep.created_at, sweep.finished_at))],
    ]),
  ];
}

// The best trial continued alone once the trials are done (docs/sweeps.md): its job and how
// it went, or the share of the budget kept for it.
function finalPhase(sweep) {
  const final = sweep.final;
  if (!final) return sweep.final_fraction ? `${Math.round(sweep.final_fraction * 100)}% of the budget, once the trials are done` : "none";
  const loss = final.val_loss == null ? "" : ` · validation loss ${num(final.val_loss, 4)}`;
  return h("span", {}, `trial ${final.number} for ${duration(final.max_seconds)}: ${final.status}${loss} · `,
    final.job_id ? idLink("jobs", final.job_id) : "refused");
}

function trialRow(trial, best) {
  const isBest = best?.number === trial.number;
  return h("tr", { class: isBest ? "best" : null,
    dataset: { trial: trial.number, status: trial.status } },
  h("td", { class: "number" }, String(trial.number),
    isBest ? h("span", { class: "badge" }, "best") : null),
  h("td", {}, settings(trial.params)),
  h("td", {}, statusPill(trial.status),
    trial.error ? h("span", { class: "muted small" }, ` ${trial.error.message}`) : null),
  h("td", { class: "number" }, String(trial.rung)),
  h("td", { class: "number" }, num(trial.best_val_loss, 4)),
  h("td", {}, trial.job_id ? idLink("jobs", trial.job_id) : "–"));
}

/** A trial's values, as the command line prints them: 4 significant digits for floats. */
function settings(params) {
  return Object.entries(params).map(([name, value]) => `${name}=${
    typeof value === "number" && !Number.isInteger(value) ? Number(value.toPrecision(4)) : value}`)
    .join(" ");
}

/** What was searched: the space, and the base spec's sections the sweep set. */
function searchView(sweep) {
  const space = Object.fromEntries(Object.entries(sweep.space).map(([name, values]) => [name,
    Array.isArray(values) ? values.join(", ")
      : `${values.log ? "log " : ""}${values.low} … ${values.high}`]));
  return h("div", {}, h("p", {}, "Preset ", h("strong", {}, sweep.preset),
    ", objective: the lowest validation loss."),
  h("div", { class: "spec-grid" }, specTable("space", space),
    Object.entries(sweep.overrides).filter(([, fields]) => Object.keys(fields).length)
      .map(([name, fields]) => specTable(name, fields))));
}
