// Following a job's or a sweep's event stream (text/event-stream) with fetch().
//
// EventSource cannot send an Authorization header, and the token must never go in a URL,
// so the stream is read from fetch()'s body. Like EventSource, it reconnects after the
// server's `retry:` with Last-Event-ID, so nothing is missed and nothing comes twice, and
// it reconnects at once after the server's own `timeout` event (TEXTGEN_SSE_MAX_S).

import { ApiError, authHeaders, get, problemOf } from "./api.js";

const TERMINAL = ["succeeded", "failed", "cancelled"]; // a job's; a sweep's are among them

/** Calls onEvent({id, type, time, data}) for each event, oldest first, until the job ends
 * or `signal` aborts. Rejects with ApiError on a 4xx (no such job, token refused). */
export function followEvents(jobId, onEvent, options) {
  return follow(`/v1/jobs/${encodeURIComponent(jobId)}`, onEvent, options);
}

/** As followEvents, a sweep's events (trial_started, trial_reported ...) until it ends. */
export function followSweepEvents(sweepId, onEvent, options) {
  return follow(`/v1/sweeps/${encodeURIComponent(sweepId)}`, onEvent, options);
}

async function follow(resource, onEvent, { signal, onConnection = () => {} } = {}) {
  const path = `${resource}/events`;
  let lastId = null;
  let retryMs = 2000;
  while (!signal?.aborted) {
    try {
      const headers = authHeaders({ Accept: "text/event-stream" });
      if (lastId) headers["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers, signal });
      if (!response.ok) throw await problemOf(response);
      onConnection(true);
      let timedOut = false;
      for await (const message of messages(response.body)) {
        if (message.retry) retryMs = message.retry;
        if (message.id) lastId = message.id;
        if (message.event === "timeout") { timedOut = true; break; }
        if (!message.data) continue;
        const event = JSON.parse(message.data);
        onEvent(event);
        if (event.type === "status" && TERMINAL.includes(event.data.status)) return;
      }
      if (timedOut) continue; // the server's time limit: reconnect at once
      // The stream ended without the last event: the server went away, or the job or
      // sweep ended long ago (its early events trimmed). Ask before reconnecting.
      const record = await get(resource, { signal });
      if (TERMINAL.includes(record.status)) return;
    } catch (error) {
      if (signal?.aborted || error.name === "AbortError") return;
      // A 4xx will answer the same again; a 5xx or a dropped connection may not.
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) throw error;
    }
    onConnection(false);
    await sleep(retryMs, signal);
  }
}

/** The messages of an event stream body: {id, event, data, retry}, per the SSE format. */
async function* messages(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = {};
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an incomplete last line waits for the next chunk
      for (const line of lines) {
        if (line === "") {
          if (Object.keys(message).length) yield message;
          message = {};
        } else if (!line.startsWith(":")) { // ":" starts a comment: the heartbeat
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") message.data = message.data ? `${message.data}\n${text}` : text;
          else if (field === "id" || field === "event") message[field] = text;
          else if (field === "retry" && /^\d+$/.test(text)) message.retry = Number(text);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {}); // close the connection when the reader stops early
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
