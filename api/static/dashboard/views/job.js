// One job: what it is doing, its loss per epoch, each epoch's sample, its events, cancel.
//
// The event stream brings every event from the first (so a finished job shows its whole
// history the same way) and live ones while the job runs: a generation's text as it is
// sampled, a training's progress twice a second (the bar) and its epochs' losses. The
// job record is read again at each status change, and polled only while no progress
// event comes (a generation, a worker gone silent, a training past its cap of events).

import { get } from "../api.js";
import { lossChart } from "../chart.js";
import { h } from "../dom.js";
import { duration, isActive, jobDuration, num, secondsBetween, when } from "../format.js";
import { followEvents } from "../sse.js";
import { canceller, facts, idLink, idText, problemBox, progressBar, section, specTable,
  statusPill } from "../ui.js";
import { evaluationTable } from "./evaluations.js";
import { liveSamples, samplesList, withoutOpeningBlankLines } from "./samples.js";

const POLL_MS = 1500; // the record's refresh while the job is active and sends no progress
// No progress event for this long (four the worker would have sent): poll the record.
const EVENTS_SILENT_MS = 2000;
const TITLES = { train: "Training job ", generate: "Generation job ", evaluate: "Evaluation job " };

export async function render(root, { params: [jobId], signal }) {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  let job = await get(path, { signal });
  const training = job.type === "train";
  const head = h("section", { class: "card" });
  const chart = h("div", { class: "chart" });
  const samples = h("div", { class: "epoch-samples" },
    h("p", { class: "muted" }, "Each epoch writes a sample here."));
  const log = h("tbody", {});
  const streamNote = h("div", {});
  const epochs = []; // {epoch, loss, val_loss, sample} from epoch_end events
  let shown = null; // the job as last drawn: a poll that changed nothing redraws nothing
  let samplesAsked = false; // a generation job's samples: fetched once it has them
  const live = liveSamples(); // its text as it is sampled, until then
  const cancel = canceller(path, { signal, where: head, done: (answer) => {
    job = answer;
    showJob();
  } });

  root.append(head);
  if (training) {
    root.append(section("Loss per epoch", chart), section("Samples by epoch", samples));
  } else {
    root.append(section(job.type === "evaluate" ? "Evaluation" : "Samples",
      h("div", { class: "result" })));
  }
  root.append(section("Spec", specView(job)),
    section("Events", streamNote, h("table", { class: "events" },
      h("thead", {}, h("tr", {}, ["Time", "Event", "Details"].map((t) => h("th", {}, t)))),
      log)));
  showJob();
  chart.append(lossChart(epochs));

  function showJob() {
    const now = JSON.stringify(job);
    if (now === shown) return;
    shown = now;
    head.replaceChildren(...header(job, cancel).filter(Boolean));
    if (job.type === "evaluate") {
      root.querySelector(".result").replaceChildren(job.result ? evaluationTable(job.result)
        : h("p", { class: "muted" }, isActive(job) ? "Scoring…" : "No result."));
    } else if (!training && !samplesAsked) {
      const result = root.querySelector(".result");
      if (!job.result) {
        result.replaceChildren(live.element.childElementCount ? live.element
          : h("p", { class: "muted" }, isActive(job) ? "Generating…" : "No samples."));
        return;
      }
      // The record has a preview; the samples in full are fetched once, from their link.
      samplesAsked = true;
      get(job.result.url, { signal })
        .then(({ samples }) => result.replaceChildren(samplesList(samples, job.spec.prompt)))
        .catch((error) => { if (!signal.aborted) result.replaceChildren(problemBox(error)); });
    }
  }

  function onEvent(event) {
    if (event.type === "text") { // a generation's deltas: its text, not a row each
      live.add(event.data.deltas);
      if (!samplesAsked && !live.element.isConnected) {
        root.querySelector(".result").replaceChildren(live.element);
      }
      return;
    }
    if (event.type === "progress") { // a training's step: the bar, not a row each
      if (!isActive(job)) return; // an old one, replayed with the history of an ended job
      const { loss, ...progress } = event.data;
      job = { ...job, progress, metrics: { ...job.metrics, loss } };
      showJob();
      poll(EVENTS_SILENT_MS); // the stream moves the bar: no poll while it does
      return;
    }
    log.append(eventRow(event));
    if (event.type === "epoch_end") {
      if (!epochs.length) samples.replaceChildren();
      epochs.push(event.data);
      chart.replaceChildren(lossChart(epochs));
      samples.prepend(epochSample(event.data)); // newest first: the one to read
      if (isActive(job)) { // the epoch's losses, as the record now holds them
        const { loss, val_loss, bits_per_char, bits_per_token } = event.data;
        job = { ...job, metrics: { ...job.metrics, loss, val_loss, bits_per_char,
          bits_per_token } };
        showJob();
      }
    } else if (event.type === "status") {
      refresh();
    }
  }

  let timer = null;
  function poll(afterMs) {
    clearTimeout(timer);
    if (isActive(job) && !signal.aborted) timer = setTimeout(refresh, afterMs);
  }
  async function refresh() {
    clearTimeout(timer);
    try {
      job = await get(path, { signal });
      showJob();
    } catch (error) {
      if (signal.aborted) return;
      streamNote.replaceChildren(problemBox(error));
    }
    poll(POLL_MS);
  }
  signal.addEventListener("abort", () => clearTimeout(timer));
  poll(POLL_MS);

  followEvents(jobId, onEvent, { signal, onConnection: (connected) => {
    streamNote.replaceChildren(connected ? "" : h("p", { class: "muted small" },
      "The event stream was interrupted; reconnecting…"));
  } }).catch((error) => streamNote.replaceChildren(problemBox(error)));
}

function header(job, cancel) {
  const metrics = job.metrics || {};
  const metric = (value) => (value === undefined ? null : num(value));
  // A training job's result, or the model a generation job samples.
  const modelId = job.result?.model_id ?? job.model_id;
  // The API takes bits per character from the validation loss once there is one (after
  // the first epoch, if validating), else from the training loss: say which.
  const bitsFrom = typeof metrics.val_loss === "number" ? "validation" : "training";
  const attempts = job.attempts || [];
  const eta = isActive(job) ? job.progress.eta_seconds : null;
  return [
    h("div", { class: "page-head" },
      h("h1", {}, TITLES[job.type] || "Job ",
        h("span", { class: "id" }, job.id)),
      statusPill(job.status), h("span", { class: "spacer" }),
      isActive(job) ? h("button", { class: "danger", type: "button", id: "cancel",
        onclick: (event) => cancel(event.currentTarget) }, "Cancel job") : null),
    progressBar(job),
    job.error ? h("div", { class: "problem" }, h("strong", {}, `Failed: ${job.error.code}`),
      h("p", {}, job.error.message)) : null,
    facts([
      ["Created", when(job.created_at)],
      // The first attempt's start (started_at is the last one's): Duration counts from it.
      ["Started", job.started_at ? when(attempts[0]?.started_at ?? job.started_at) : null],
      ["Finished", job.finished_at ? when(job.finished_at) : null],
      ["Duration", duration(jobDuration(job))
        + (attempts.length > 1 ? ` over ${attempts.length} attempts` : "")],
      ["Time left (estimate)", eta === null || eta === undefined ? null : duration(eta)],
      ["Model shape", job.type === "train" ? modelShape(job.spec) : null],
      ["Loss", metric(metrics.loss)],
      ["Validation loss", metric(metrics.val_loss)],
      [`Bits per character (from ${bitsFrom} loss)`, metric(metrics.bits_per_char)],
      [`Bits per token (from ${bitsFrom} loss)`, metric(metrics.bits_per_token)],
      ["Stopped because", job.stopped_reason ? job.stopped_reason.replace("_", " ") : null],
      ["Corpus", job.corpus_id ? idText(job.corpus_id) : null],
      ["Continues model", job.init_from_model ? idLink("models", job.init_from_model) : null],
      ["Sweep", job.sweep_id ? idLink("sweeps", job.sweep_id) : null],
      ["Model", modelId ? idLink("models", modelId) : null],
      ["Best epoch", job.result?.best_epoch ?? null],
    ]),
    attempts.length > 1 ? attemptsTable(attempts) : null,
  ];
}

/** The model a training job trains (a budget may have sized it: shared/sizing/model_sizing.py). */
function modelShape({ model, training }) {
  return `${model.layers} × ${model.units} LSTM, dropout ${model.dropout}, `
    + `learning rate ${training.learning_rate}`;
}

/** Each attempt of a job that ran more than once: its time, worker and outcome. */
function attemptsTable(attempts) {
  return h("table", { class: "attempts" },
    h("thead", {}, h("tr", {}, ["Attempt", "Time", "Worker", "Outcome"].map((t) => h("th", {}, t)))),
    h("tbody", {}, attempts.map((a) => h("tr", { dataset: { outcome: a.outcome } },
      h("td", {}, String(a.attempt)),
      h("td", {}, duration(secondsBetween(a.started_at, a.ended_at))),
      h("td", {}, a.worker || "–"),
      h("td", {}, a.outcome === "lost"
        ? `lost: ${a.reason || "its worker stopped answering"}` : a.outcome)))));
}

function specView(job) {
  if (job.type !== "train") {
    return h("div", { class: "spec-grid" }, specTable(
      job.type === "evaluate" ? "evaluation" : "generation", job.spec));
  }
  const { preset, ...sections } = job.spec;
  return h("div", {}, h("p", {}, "Preset ", h("strong", {}, preset),
    ", with these values after the request's overrides:"),
  h("div", { class: "spec-grid" },
    Object.entries(sections).map(([name, fields]) => specTable(name, fields))));
}

function epochSample(data) {
  return h("article", { class: "epoch-sample" },
    h("h3", {}, `Epoch ${data.epoch}`, h("span", { class: "muted" },
      ` · loss ${num(data.loss)} · validation loss ${num(data.val_loss)}`)),
    h("pre", { class: "sample" }, withoutOpeningBlankLines(data.sample)));
}

function eventRow(event) {
  return h("tr", { dataset: { type: event.type } },
    h("td", {}, when(event.time)),
    h("td", {}, event.type.replace("_", " ")),
    h("td", {}, eventDetails(event)));
}

function eventDetails({ type, data }) {
  if (type === "status") {
    const extra = data.reason || (data.error ? `${data.error.code}: ${data.error.message}` : "");
    return [statusPill(data.status), extra ? ` ${extra}` : ""];
  }
  if (type === "epoch_end") {
    return `epoch ${data.epoch}: loss ${num(data.loss)}, validation loss ${num(data.val_loss)}`;
  }
  if (type === "resumed") return `attempt ${data.attempt} continues after epoch ${data.epoch}`;
  return JSON.stringify(data);
}
