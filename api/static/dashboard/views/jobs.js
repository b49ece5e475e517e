// Jobs: newest first, live while any of them is queued or running.
//
// Live from two sources: each active job's event stream (status changes and epoch ends
// arrive at once), and a light poll of the list, because progress within an epoch is
// written to the job record and is not an event. Streams are capped: a browser opens at
// most 6 connections to one server over HTTP/1.1, and every stream holds one.

import { get } from "../api.js";
import { h } from "../dom.js";
import { duration, isActive, jobDuration, num, when } from "../format.js";
import { followEvents } from "../sse.js";
import { idLink, problemBox, progressBar, statusPill } from "../ui.js";

const POLL_MS = 2000; // progress bars move this often while a job is active
const MAX_STREAMS = 3; // leaves 3 of the browser's 6 connections for everything else
const PAGE = 25; // rows shown at first, and added by "Show more"
const MAX_ROWS = 200; // the API's largest page

export async function render(root, { signal }) {
  const body = h("tbody", {});
  const trouble = h("div", {});
  const live = h("span", { class: "live", hidden: true }, "live");
  const more = h("button", { class: "secondary", type: "button", hidden: true,
    onclick: () => { limit = Math.min(limit + PAGE, MAX_ROWS); refresh(); } }, "Show more");
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Jobs"), live, h("span", { class: "spacer" }),
      h("a", { class: "button", href: "#/train" }, "New training")),
    trouble,
    h("div", { class: "card flush" }, h("table", { class: "jobs" },
      h("thead", {}, h("tr", {}, ["Job", "Type", "Status", "Progress", "Loss (nats)", "Val loss (nats)",
        "Created", "Duration"].map((label) => h("th", {}, label)))),
      body)),
    h("div", { class: "more" }, more));

  let limit = PAGE;
  let timer = null;
  let pending = null; // the refresh in flight, so events arriving together cause one
  const followed = new Set();

  let loaded = false;
  async function refresh() {
    pending ??= load().finally(() => { pending = null; });
    return pending;
  }

  async function load() {
    clearTimeout(timer);
    let again;
    try {
      const page = await get(`/v1/jobs?limit=${limit}`, { signal });
      body.replaceChildren(...(page.data.length ? page.data.map(row) : [emptyRow()]));
      more.hidden = !page.has_more || limit >= MAX_ROWS;
      const active = page.data.filter(isActive);
      live.hidden = !active.length;
      active.forEach((job) => follow(job.id));
      trouble.replaceChildren();
      again = active.length > 0;
      loaded = true;
    } catch (error) {
      if (!loaded || signal.aborted) throw error; // the first load's error is the page's
      trouble.replaceChildren(problemBox(error)); // keep the last rows, say why, retry
      again = true;
    }
    if (again && !signal.aborted) timer = setTimeout(() => refresh().catch(() => {}), POLL_MS);
  }

  function follow(jobId) {
    if (followed.has(jobId) || followed.size >= MAX_STREAMS) return;
    followed.add(jobId);
    followEvents(jobId, () => refresh().catch(() => {}), { signal })
      .catch(() => {}) // the poll still shows it; a stream error is not worth a message here
      .finally(() => followed.delete(jobId));
  }

  signal.addEventListener("abort", () => clearTimeout(timer));
  await refresh();
}

function row(job) {
  const metrics = job.metrics || {};
  return h("tr", { dataset: { jobId: job.id, status: job.status } },
    h("td", {}, idLink("jobs", job.id)),
    h("td", {}, job.type),
    h("td", {}, statusPill(job.status)),
    h("td", {}, progressBar(job)),
    h("td", { class: "number" }, num(metrics.loss)),
    h("td", { class: "number" }, num(metrics.val_loss)),
    h("td", {}, when(job.created_at)),
    h("td", {}, duration(jobDuration(job))));
}

function emptyRow() {
  return h("tr", { class: "empty" }, h("td", { colSpan: 8 },
    "No jobs yet. Upload a text and train a model under ",
    h("a", { href: "#/train" }, "New training"), "."));
}
