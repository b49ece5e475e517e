// The dashboard's entry: sign-in state and hash routes, one view module per page.
//
// Hash routes (#/jobs/job_...) need nothing from the server: `/` serves this one page and
// a reload or a shared link lands on the same view.

import { token, UNAUTHORIZED } from "./api.js";
import { clear } from "./dom.js";
import { problemBox } from "./ui.js";
import * as job from "./views/job.js";
import * as jobs from "./views/jobs.js";
import * as model from "./views/model.js";
import * as models from "./views/models.js";
import * as signin from "./views/signin.js";
import * as sweep from "./views/sweep.js";
import * as sweeps from "./views/sweeps.js";
import * as train from "./views/train.js";

const SIGN_IN = "#/signin";
const ROUTES = [
  [/^#\/jobs$/, jobs, "jobs"],
  [/^#\/jobs\/([\w-]+)$/, job, "jobs"],
  [/^#\/models$/, models, "models"],
  [/^#\/models\/([\w-]+)$/, model, "models"],
  [/^#\/sweeps$/, sweeps, "sweeps"],
  [/^#\/sweeps\/([\w-]+)$/, sweep, "sweeps"],
  [/^#\/train$/, train, "train"],
  [/^#\/signin$/, signin, null],
];

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signOut = document.getElementById("sign-out");
let current = null; // the AbortController of the view on screen: its streams and timers
let refused = null; // the ApiError of a refused token, for the sign-in page to explain

async function show() {
  current?.abort();
  current = new AbortController();
  if (token.get()) refused = null; // signed in again since
  if (!token.get() && location.hash !== SIGN_IN) {
    location.hash = SIGN_IN; // a hashchange: show() runs again
    return;
  }
  const route = ROUTES.find(([pattern]) => pattern.test(location.hash));
  if (!route) {
    location.hash = token.get() ? "#/jobs" : SIGN_IN;
    return;
  }
  const [pattern, page, section] = route;
  const signedIn = Boolean(token.get());
  nav.hidden = signOut.hidden = !signedIn;
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset.section === section);
  }
  // Each view renders into its own element: one that loads slowly after the reader moved
  // on writes into a detached node, never into the next page.
  const root = document.createElement("div");
  root.className = "page";
  clear(view).append(root);
  const { signal } = current;
  try {
    await page.render(root, { params: pattern.exec(location.hash).slice(1), signal, refused });
  } catch (error) {
    if (!signal.aborted && error.name !== "AbortError") root.append(problemBox(error));
  }
}

// Any 401: the token is gone or was never valid. Forget it and ask for another.
window.addEventListener(UNAUTHORIZED, (event) => {
  token.clear();
  refused = event.detail;
  if (location.hash !== SIGN_IN) location.hash = SIGN_IN;
});

signOut.addEventListener("click", () => {
  token.clear();
  refused = null;
  location.hash = SIGN_IN;
});

// Never a blank page: an error nobody caught still says what happened.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason?.name !== "AbortError") view.prepend(problemBox(event.reason));
});

window.addEventListener("hashchange", show);
show();
