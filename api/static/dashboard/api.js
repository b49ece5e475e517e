// The one place the page talks to the API: the token, JSON bodies, and problem+json errors.
//
// The token is kept in sessionStorage: it survives a reload but not the tab, and it is
// sent only as an Authorization header, never in a URL (URLs end up in logs and history).

const TOKEN_KEY = "textgen.token";
export const UNAUTHORIZED = "textgen:unauthorized"; // a window event: the token was refused

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Raised when the API answers 4xx/5xx (its problem+json), or does not answer (status 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem; // {title, detail, code, field, errors: [{field, message}]}
  }
}

export function authHeaders(extra = {}) {
  const value = token.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

/** The ApiError for a failed response; a 401 also tells the page to sign in again. */
export async function problemOf(response) {
  let problem;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    problem = await response.json().catch(() => null);
  }
  if (!problem || typeof problem !== "object") {
    // Not ours (a proxy, gunicorn's own 414): keep a little of the text.
    const text = (await response.text().catch(() => "")).slice(0, 200);
    problem = { title: response.statusText || `HTTP ${response.status}`, detail: text };
  }
  const error = new ApiError(response.status, problem);
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: error }));
  }
  return error;
}

function unreachable(cause) {
  return new ApiError(0, {
    title: "The API did not answer",
    detail: `Is the server running? (${cause.message})`,
  });
}

/**
 * One request. `json` is sent as a JSON body, `body` as is (FormData for uploads).
 * Returns {status, data, headers}; throws ApiError.
 */
export async function call(method, path, { json, body, headers = {}, signal } = {}) {
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers = { ...headers, "Content-Type": "application/json" };
  }
  let response;
  try {
    response = await fetch(path, { method, body, signal, headers: authHeaders(headers) });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw unreachable(e);
  }
  if (!response.ok) throw await problemOf(response);
  const data = response.status === 204 ? null : await response.json();
  return { status: response.status, data, headers: response.headers };
}

export const get = async (path, options) => (await call("GET", path, options)).data;
export const post = async (path, json, options = {}) =>
  (await call("POST", path, { ...options, json })).data;

/** A random Idempotency-Key. Not crypto.randomUUID(), which exists only in secure
 * contexts: the page may be opened over plain HTTP from another machine. */
export function newIdempotencyKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A file from the API as a Blob (downloads need the token, so a plain link cannot do). */
export async function blob(path) {
  let response;
  try {
    response = await fetch(path, { headers: authHeaders() });
  } catch (e) {
    throw unreachable(e);
  }
  if (!response.ok) throw await problemOf(response);
  return response.blob();
}
