// Models: the trained ones, newest first.

import { get } from "../api.js";
import { h } from "../dom.js";
import { num, when } from "../format.js";
import { idLink } from "../ui.js";

const LIMIT = 100; // models shown; the list is newest first

export async function render(root, { signal }) {
  const page = await get(`/v1/models?limit=${LIMIT}`, { signal });
  const rows = page.data.map((model) => h("tr", { dataset: { modelId: model.id } },
    h("td", {}, idLink("models", model.id)),
    h("td", {}, when(model.created_at)),
    h("td", {}, model.preset),
    h("td", {}, `${model.config.model.layers} × ${model.config.model.units}`),
    h("td", { class: "number" }, model.best_epoch ?? "–"),
    h("td", { class: "number" }, num(model.metrics.val_loss)),
    h("td", { class: "number" }, num(model.metrics.bits_per_char))));
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Models")),
    h("div", { class: "card flush" }, h("table", { class: "models" },
      h("thead", {}, h("tr", {}, ["Model", "Created", "Preset", "LSTM layers × units",
        "Best epoch", "Val loss", "Bits/char"].map((label) => h("th", {}, label)))),
      h("tbody", {}, rows.length ? rows : h("tr", { class: "empty" }, h("td", { colSpan: 7 },
        "No models yet: a training job that succeeds makes one."))))),
    page.has_more ? h("p", { class: "muted" }, `The newest ${LIMIT} are shown.`) : null);
}
