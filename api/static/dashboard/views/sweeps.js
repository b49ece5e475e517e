// Sweeps: newest first, with each one's trials made and best validation loss so far;
// polled while any runs (a sweep's page follows its event stream instead).

import { get } from "../api.js";
import { h } from "../dom.js";
import { duration, num, secondsBetween, when } from "../format.js";
import { idLink, statusPill } from "../ui.js";

const POLL_MS = 3000; // trials start and end every few seconds at most
const LIMIT = 100; // sweeps shown; the list is newest first

export async function render(root, { signal }) {
  const body = h("tbody", {});
  const note = h("p", { class: "muted", hidden: true }, `The newest ${LIMIT} are shown.`);
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Sweeps")),
    h("div", { class: "card flush" }, h("table", { class: "sweeps" },
      h("thead", {}, h("tr", {}, ["Sweep", "Status", "Trials", "Best val loss", "Best model",
        "Created", "Duration"].map((label) => h("th", {}, label)))),
      body)),
    note);

  let timer = null;
  signal.addEventListener("abort", () => clearTimeout(timer));
  async function load() {
    const page = await get(`/v1/sweeps?limit=${LIMIT}`, { signal });
    body.replaceChildren(...(page.data.length ? page.data.map(row) : [emptyRow()]));
    note.hidden = !page.has_more;
    if (page.data.some((sweep) => sweep.status === "running") && !signal.aborted) {
      timer = setTimeout(() => load().catch(() => {}), POLL_MS);
    }
  }
  await load();
}

function row(sweep) {
  return h("tr", { dataset: { sweepId: sweep.id, status: sweep.status } },
    h("td", {}, idLink("sweeps", sweep.id)),
    h("td", {}, statusPill(sweep.status)),
    h("td", { class: "number" }, `${sweep.trials_made} / ${sweep.max_trials}`),
    h("td", { class: "number" }, num(sweep.best?.val_loss, 4)),
    h("td", {}, sweep.best ? idLink("models", sweep.best.model_id) : "–"),
    h("td", {}, when(sweep.created_at)),
    h("td", {}, duration(secondsBetween(sweep.created_at, sweep.finished_at))));
}

function emptyRow() {
  return h("tr", { class: "empty" }, h("td", { colSpan: 7 },
    "No sweeps yet. Start one with ", h("code", {}, "textgen sweep"), " or ",
    h("code", {}, "POST /v1/sweeps"), " (see ", h("a", { href: "/docs" }, "the API reference"),
    ")."));
}
