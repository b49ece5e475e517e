// Small pieces every view uses: status pills, progress bars, facts, errors.

import { post } from "./api.js";
import { h } from "./dom.js";
import { isActive, progressLabel } from "./format.js";

export function statusPill(status) {
  return h("span", { class: `status status-${status}`, dataset: { status } }, status);
}

/** A running job's bar and label; an ended job's label alone (no bar left half full). */
export function progressBar(job) {
  if (!isActive(job)) {
    return h("span", { class: "progress" }, h("span", { class: "progress-label" },
      progressLabel(job)));
  }
  const bar = h("span", { class: "bar-fill" });
  // A style property set from script, which the page's CSP allows (a style attribute not).
  bar.style.width = `${Math.round(job.progress.fraction * 100)}%`;
  return h("span", { class: "progress", title: `${Math.round(job.progress.fraction * 100)} %` },
    h("span", { class: `bar bar-${job.status}` }, bar),
    h("span", { class: "progress-label" }, progressLabel(job)));
}

/** A definition list from [label, value] pairs; a null value leaves its row out. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value))));
}

/** An id that has no page of its own (a corpus). */
export function idText(id) {
  return h("span", { class: "id", title: id }, id);
}

export function idLink(kind, id) {
  return h("a", { class: "id", title: id, href: `#/${kind}/${encodeURIComponent(id)}` }, id);
}

/** An error from the API (or one the page words the same way: {problem: {title,
 * detail}}), readably: its title and detail, and each field at fault. */
export function problemBox(error) {
  if (!error?.problem) {
    console.error(error);
    return h("div", { class: "problem", role: "alert" },
      h("strong", {}, "Something went wrong in the page"),
      h("p", {}, String(error && error.message || error)));
  }
  const { title, detail, errors } = error.problem;
  const status = error.status ? ` (${error.status})` : "";
  const fieldErrors = (errors || []).filter((e) => e.field);
  return h("div", { class: "problem", role: "alert", dataset: { status: error.status } },
    h("strong", {}, `${title || "Error"}${status}`),
    fieldErrors.length > 1 || !detail ? null : h("p", {}, detail),
    fieldErrors.length > 1
      ? h("ul", {}, fieldErrors.map((e) => h("li", {}, h("code", {}, e.field), ": ", e.message)))
      : null);
}

/** Runs `work` (async) with `button` disabled and its label changed meanwhile. */
export async function busy(button, label, work) {
  const before = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = before;
  }
}

/** What a Cancel button (a job's, a sweep's) runs with itself: POST `${path}/cancel` with
 * the button busy, the answer to `done`, a refusal shown in `where`. */
export function canceller(path, { signal, done, where }) {
  return async (button) => {
    try {
      done(await busy(button, "Cancelling…", () => post(`${path}/cancel`, undefined, { signal })));
    } catch (error) {
      where.append(problemBox(error));
    }
  };
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

/** A labelled form control with a line of help under it. */
export function field(label, input, help, extraClass = "") {
  return h("label", { class: `field ${extraClass}`.trim() }, h("span", {}, label), input,
    help ? h("small", {}, help) : null);
}

/** A spec section ({field: value}) as a compact two-column table. */
export function specTable(title, fields) {
  return h("table", { class: "spec" },
    h("caption", {}, title),
    h("tbody", {}, Object.entries(fields).map(([key, value]) =>
      h("tr", {}, h("th", {}, key), h("td", {}, value === null ? "none" : String(value))))));
}
