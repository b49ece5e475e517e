// Sign in: a token, checked against the API, kept in this tab's sessionStorage.

import { get, token } from "../api.js";
import { h } from "../dom.js";
import { busy, problemBox } from "../ui.js";

export async function render(root, { refused }) {
  const input = h("input", { id: "token", name: "token", type: "password", required: true,
    autocomplete: "off", spellcheck: false, placeholder: "paste your API token" });
  const button = h("button", { type: "submit" }, "Sign in");
  const errors = h("div", {});
  if (refused) {
    errors.append(h("div", { class: "problem", role: "alert", dataset: { status: 401 } },
      h("strong", {}, "Your token was not accepted (401)"),
      h("p", {}, `${refused.problem.detail || "the token is not valid"}. `
        + "Sign in with a valid token; each owner sees only their own jobs.")));
  }
  const form = h("form", { class: "card signin", onsubmit: async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    token.set(input.value.trim());
    try {
      // Any authenticated request tells a good token from a bad one.
      await busy(button, "Checking…", () => get("/v1/jobs?limit=1"));
      location.hash = "#/jobs";
    } catch (error) {
      token.clear();
      errors.append(problemBox(error));
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "Paste your textgen API token. ", h("code", {}, "make up"),
    " creates one on its first start and keeps it in ", h("code", {}, "data/token"),
    "; tokens from ", h("code", {}, "TEXTGEN_API_TOKENS"), " or ",
    h("code", {}, ".venv/bin/textgen token create NAME"), " work too."),
  h("label", { for: "token" }, "API token"),
  h("div", { class: "row" }, input, button),
  h("p", { class: "muted small" }, "The token stays in this browser tab (sessionStorage) "
    + "and goes only to this server, in the Authorization header."),
  errors);
  root.append(form);
  input.focus();
}
