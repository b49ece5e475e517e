// Evaluations: the table of an evaluation job, and a model's evaluations on its page.

import { get } from "../api.js";
import { h } from "../dom.js";
import { num, when } from "../format.js";
import { idLink, idText, problemBox, statusPill } from "../ui.js";

const LISTED = 200; // evaluation jobs read for a model's page: the newest, one page
const OOV_SHOWN = 5; // characters listed in a cell (a listing has 5); the job has up to 50

/** An evaluation's result, one model a row; `current` is marked (the model page's). */
export function evaluationTable(result, current = null) {
  return h("table", { class: "evaluation" },
    h("thead", {}, h("tr", {}, ["Model", "Bits/char", "Bits/token", "Chars scored", "Tokens",
      "Out of vocabulary", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, result.models.map((row) => h("tr", {
      class: row.model_id === current ? "current" : "", dataset: { modelId: row.model_id } },
    h("td", {}, idLink("models", row.model_id)),
    h("td", { class: "number bits" }, num(row.bits_per_char, 4)),
    h("td", { class: "number" }, num(row.bits_per_token, 4)),
    h("td", { class: "number" }, row.chars_scored.toLocaleString()),
    h("td", { class: "number" }, row.tokens_scored.toLocaleString()),
    h("td", {}, oovText(row)),
    h("td", { class: "muted small" },
      row.overlaps_training ? "trained on part of this text" : "")))));
}

function oovText(row) {
  if (!row.oov_count) return "none";
  const shown = row.oov.slice(0, OOV_SHOWN).map((c) => JSON.stringify(c)).join(" ");
  return `${row.oov_count.toLocaleString()}: ${shown}${row.oov.length >= OOV_SHOWN ? " …" : ""}`;
}

/** The model's evaluations, newest first: each job's table with this model marked. */
export async function modelEvaluations(modelId, signal) {
  const place = h("div", { class: "evaluations" });
  try {
    const page = await get(`/v1/jobs?type=evaluate&limit=${LISTED}`, { signal });
    const jobs = page.data.filter((job) => (job.model_ids || []).includes(modelId));
    place.append(jobs.length ? h("div", {}, jobs.map((job) => evaluationOf(job, modelId)))
      : h("p", { class: "muted" }, "No evaluations yet: ",
        h("code", {}, `textgen evaluate ${modelId} --corpus CORPUS`),
        " or POST /v1/evaluations."));
  } catch (error) {
    if (!signal.aborted) place.append(problemBox(error));
  }
  return place;
}

function evaluationOf(job, modelId) {
  const text = job.corpus_id ? h("span", {}, "corpus ", idText(job.corpus_id)) : "a text";
  return h("article", { class: "evaluation-job", dataset: { jobId: job.id } },
    h("h3", {}, idLink("jobs", job.id), " ", statusPill(job.status),
      h("span", { class: "muted small" }, " · ", when(job.created_at), " · ", text,
        job.result ? ` · ${job.result.chars.toLocaleString()} characters` : "")),
    job.result ? evaluationTable(job.result, modelId)
      : h("p", { class: "muted" }, job.error ? `${job.error.code}: ${job.error.message}` : ""));
}
