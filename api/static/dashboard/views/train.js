// New training: upload a corpus (or pick one uploaded before) and start a training job.
//
// Fields left empty keep the preset's value (the API fills them in and the job page shows
// the whole spec), so a small model is a matter of a few numbers: units, layers, epochs.

import { call, get, newIdempotencyKey } from "../api.js";
import { h } from "../dom.js";
import { bytes } from "../format.js";
import { busy, field, problemBox } from "../ui.js";

// [section, field, label, help]: each a number the request may override.
const NUMBERS = [
  ["training", "epochs", "Epochs", "passes over the text"],
  ["model", "units", "Units", "LSTM units per layer"],
  ["model", "layers", "Layers", "stacked LSTM layers"],
  ["training", "seq_length", "Sequence length", "tokens per training window"],
  ["training", "batch_size", "Batch size", "windows per step"],
  ["training", "max_seconds", "Time limit (s)", "stop after this long, keep the best epoch"],
];
const PRESETS = {
  default: "raw text, a learned embedding, a loss at every step: the fast one for CPUs",
  seed: "the classic Keras tutorial: lowercase words without stopwords, 3 LSTM layers",
};

export async function render(root, { signal }) {
  const corpora = await get("/v1/corpora?limit=100", { signal });
  const corpus = h("select", { name: "corpus_id", id: "corpus" },
    h("option", { value: "" }, "Upload a new file…"),
    corpora.data.map((c) => option(c)));
  const file = h("input", { type: "file", name: "file", id: "file", accept: ".txt,text/plain" });
  const name = h("input", { name: "name", placeholder: "the file's name" });
  const upload = h("div", { class: "form-grid" },
    field("Text file", file, "UTF-8, UTF-16 or Windows-1252 plain text"),
    field("Name", name, "optional"));
  corpus.addEventListener("change", () => { upload.hidden = corpus.value !== ""; });

  const preset = h("select", { name: "preset", id: "preset" },
    Object.keys(PRESETS).map((p) => h("option", { value: p }, p)));
  const presetHelp = h("small", {}, PRESETS.default);
  preset.addEventListener("change", () => { presetHelp.textContent = PRESETS[preset.value]; });

  const inputs = NUMBERS.map(([section, key, label, help]) => ({
    section, key, input: h("input", { type: "number", name: `${section}.${key}`, id: key,
      step: "any", placeholder: "preset's" }), label, help })); // ranges: the API's 422
  const button = h("button", { type: "submit", id: "start" }, "Start training");
  const errors = h("div", {});
  // One key per form: a double click, or a retry after a lost answer, starts one job.
  let idempotencyKey = newIdempotencyKey();

  const form = h("form", { class: "card train", onsubmit: async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
    try {
      const job = await busy(button, "Starting…", async () => {
        if (!corpus.value) {
          const added = await uploadCorpus(file, name, signal);
          corpus.append(option(added)); // a retry trains on it rather than upload again
          corpus.value = added.id;
          upload.hidden = true;
        }
        const body = { corpus_id: corpus.value, preset: preset.value };
        for (const { section, key, input } of inputs) {
          if (input.value === "") continue;
          body[section] ??= {};
          body[section][key] = Number(input.value);
        }
        const { data } = await call("POST", "/v1/train", { json: body, signal,
          headers: { "Idempotency-Key": idempotencyKey } });
        return data;
      });
      idempotencyKey = newIdempotencyKey();
      location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      if (signal.aborted) return;
      errors.append(problemBox(error));
      for (const problem of error.problem?.errors || []) {
        form.querySelector(`[name="${CSS.escape(problem.field || "")}"]`)?.classList.add("invalid");
      }
    }
  } },
  h("h1", {}, "New training"),
  h("fieldset", {}, h("legend", {}, "Corpus"), field("Text", corpus), upload),
  h("fieldset", {}, h("legend", {}, "Recipe"), field("Preset", preset), presetHelp),
  h("fieldset", {}, h("legend", {}, "Size and length"),
    h("p", { class: "muted small" }, "Empty fields keep the preset's value. "
      + "For a quick try: 2 epochs, 32 units, 1 layer, sequence length 32."),
    h("div", { class: "form-grid" },
      inputs.map(({ input, label, help }) => field(label, input, help)))),
  h("div", { class: "actions" }, button),
  errors);
  root.append(form);
}

function option(c) {
  return h("option", { value: c.id }, `${c.name} (${bytes(c.bytes)}, ${c.id})`);
}

async function uploadCorpus(file, name, signal) {
  if (!file.files.length) {
    file.classList.add("invalid");
    throw Object.assign(new Error("no file"), { problem: { title: "No file chosen",
      detail: "Choose a text file to upload, or pick a corpus uploaded before." } });
  }
  const form = new FormData();
  form.append("file", file.files[0]);
  if (name.value.trim()) form.append("name", name.value.trim());
  return (await call("POST", "/v1/corpora", { body: form, signal })).data;
}
