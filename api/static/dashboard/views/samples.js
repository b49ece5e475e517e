// Generated samples: each begins with its prompt, set apart when it reads as typed (a
// `seed` model's prompt is prepared first, lowercased and without stopwords).

import { h } from "../dom.js";

/** Text the model wrote from no prompt: it starts after a line break and often writes
 * more, which would open the box with blank lines. */
export function withoutOpeningBlankLines(text) {
  return text.replace(/^\n+/, "");
}

export function samplesList(samples, prompt) {
  if (!samples.length) return h("p", { class: "muted" }, "No samples.");
  return h("div", { class: "samples" }, samples.map((sample, i) => {
    const cut = prompt && sample.text.startsWith(prompt) ? prompt.length : 0;
    return h("figure", { class: "sample-item" },
      h("figcaption", {}, `Sample ${i + 1} · temperature ${sample.temperature}`),
      h("pre", { class: "sample" },
        cut ? h("mark", { title: "the prompt" }, sample.text.slice(0, cut)) : null,
        prompt ? sample.text.slice(cut) : withoutOpeningBlankLines(sample.text)));
  }));
}

/** Samples as their `text` events bring them: one box per sample, text appended as it
 * comes (the deltas of a sample, joined, are its text). `add(deltas)` takes an event's. */
export function liveSamples() {
  const element = h("div", { class: "samples live" });
  const boxes = [];
  function add(deltas) {
    for (const { sample, text } of deltas) {
      if (!boxes[sample]) {
        boxes[sample] = h("pre", { class: "sample live", dataset: { sample } });
        // In sample order, whichever box comes first.
        const next = boxes.slice(sample + 1).find(Boolean);
        element.insertBefore(boxes[sample], next ?? null);
      }
      boxes[sample].append(text);
    }
  }
  return { element, add };
}
