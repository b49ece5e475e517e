// One model: its metrics and lineage, a download, a form that generates text from it (shown
// as it is sampled, from the job's `text` events), and its evaluations.

import { blob, call, get } from "../api.js";
import { h } from "../dom.js";
import { bytes, duration, num, when } from "../format.js";
import { busy, facts, field, idLink, idText, problemBox, section, specTable } from "../ui.js";
import { modelEvaluations } from "./evaluations.js";
import { followEvents } from "../sse.js";
import { liveSamples, samplesList } from "./samples.js";

const BLOB_URL_LIFE_MS = 10 * 60 * 1000; // keep the zip in memory this long for "save again"

export async function render(root, { params: [modelId], signal }) {
  const path = `/v1/models/${encodeURIComponent(modelId)}`;
  const model = await get(path, { signal });
  const download = h("div", { class: "download" });
  download.append(h("button", { type: "button", id: "download", class: "secondary",
    onclick: (event) => fetchZip(event.currentTarget, model, download) }, "Download model (.zip)"));

  const metricRows = Object.entries(model.metrics).map(([key, value]) =>
    h("tr", {}, h("th", {}, key.replaceAll("_", " ")),
      h("td", { class: "number" },
        typeof value === "number" && !Number.isInteger(value) ? num(value, 4) : String(value))));
  const { preset, ...sections } = model.config;
  const evaluations = await modelEvaluations(model.id, signal);

  root.append(
    h("section", { class: "card" },
      h("div", { class: "page-head" }, h("h1", {}, "Model ", h("span", { class: "id" }, model.id)),
        h("span", { class: "spacer" }), download),
      facts([
        ["Created", when(model.created_at)],
        ["Preset", preset],
        ["Trained by", idLink("jobs", model.job_id)],
        ["Corpus", idText(model.corpus_id)],
        ["Continues model", model.init_from_model ? idLink("models", model.init_from_model) : null],
        ["Sweep", model.sweep_id ? idLink("sweeps", model.sweep_id) : null],
        ["Best epoch", model.best_epoch ?? null],
        ["Stopped because", model.stopped_reason ? model.stopped_reason.replace("_", " ") : null],
        ["Training time", model.train_seconds ? duration(model.train_seconds) : null],
        ["Vocabulary", `${model.vocab_size} tokens`],
      ])),
    section("Generate", generateForm(model, signal)),
    section("Evaluations", evaluations),
    h("div", { class: "columns" },
      section("Metrics", h("table", { class: "spec" }, h("tbody", {}, metricRows))),
      section("Config", h("div", { class: "spec-grid" },
        Object.entries(sections).map(([name, fields]) => specTable(name, fields))))));
}

async function fetchZip(button, model, place) {
  try {
    const zip = await busy(button, "Downloading…", () => blob(model.download));
    // The download needs the token, so a plain link cannot fetch it: the page fetches it
    // and offers the bytes through a blob: URL instead.
    const url = URL.createObjectURL(zip);
    setTimeout(() => URL.revokeObjectURL(url), BLOB_URL_LIFE_MS);
    const link = h("a", { class: "button secondary", id: "download-link", href: url,
      download: `${model.id}.zip` }, `Save ${model.id}.zip (${bytes(zip.size)})`);
    place.replaceChildren(link);
    link.click();
  } catch (error) {
    place.append(problemBox(error));
  }
}

function generateForm(model, signal) {
  const prompt = h("textarea", { name: "prompt", rows: 2,
    placeholder: "text every sample starts with (may be empty)" });
  // No min or max here: the API owns the ranges and its 422 says which field is off.
  const length = h("input", { name: "length", type: "number", value: "200" });
  const temperature = h("input", { name: "temperature", value: "0.8" });
  const count = h("input", { name: "num_samples", type: "number", value: "1" });
  const seed = h("input", { name: "seed", type: "number", placeholder: "random" });
  const button = h("button", { type: "submit" }, "Generate");
  const out = h("div", { class: "generated" });

  const form = h("form", { class: "generate", onsubmit: async (event) => {
    event.preventDefault();
    out.replaceChildren();
    const body = {
      model_id: model.id, prompt: prompt.value, length: Number(length.value),
      // "0.5, 1" asks for samples at each temperature
      temperature: temperature.value.includes(",")
        ? temperature.value.split(",").map(Number) : Number(temperature.value),
      num_samples: Number(count.value),
    };
    if (seed.value !== "") body.seed = Number(seed.value);
    try {
      const job = await busy(button, "Generating…", () => generate(body, out, signal));
      // The job has a preview; its samples in full are at its result link.
      const samples = job.status === "succeeded"
        ? (await get(job.result.url, { signal })).samples : null;
      out.replaceChildren(samples
        ? samplesList(samples, body.prompt)
        : h("div", { class: "problem" }, h("strong", {}, `The generation ${job.status}`),
          h("p", {}, job.error ? `${job.error.code}: ${job.error.message}` : "")),
      h("p", { class: "muted small" }, "Job ", idLink("jobs", job.id), `, seed ${job.spec.seed}.`));
    } catch (error) {
      if (!signal.aborted) out.replaceChildren(problemBox(error));
    }
  } },
  h("div", { class: "form-grid" },
    field("Prompt", prompt, null, "wide"),
    field("Length", length, "tokens after the prompt"),
    field("Temperature", temperature, "0 = greedy; a list like 0.5, 1 gives samples at each"),
    field("Samples", count, "per temperature"),
    field("Seed", seed, "same seed, same text")),
  h("div", { class: "actions" }, button), out);
  return form;
}

/** The finished generation job, its text shown in `out` as the worker samples it. */
async function generate(body, out, signal) {
  const { data: job } = await call("POST", "/v1/generate", { json: body, signal });
  const live = liveSamples();
  out.replaceChildren(h("p", { class: "muted" }, `Job ${job.id} is ${job.status}…`));
  await followEvents(job.id, (event) => {
    if (event.type !== "text") return;
    if (!live.element.isConnected) out.replaceChildren(live.element);
    live.add(event.data.deltas);
  }, { signal });
  return get(`/v1/jobs/${encodeURIComponent(job.id)}`, { signal });
}
