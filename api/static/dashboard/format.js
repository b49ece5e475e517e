// How numbers, times and statuses read on the page.

export const ACTIVE = ["queued", "running"];

export function isActive(job) {
  return ACTIVE.includes(job.status);
}

/** A loss to 3 decimals; "–" when there is none yet. */
export function num(value, digits = 3) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** Seconds from one ISO time to another, or to now. */
export function secondsBetween(start, end) {
  return ((end ? Date.parse(end) : Date.now()) - Date.parse(start)) / 1000;
}

/** How long a job ran: from its first attempt's start (started_at is the last one's) to
 * its end, or to now while it runs. */
export function jobDuration(job) {
  const start = job.attempts?.[0]?.started_at ?? job.started_at;
  return start ? secondsBetween(start, job.finished_at) : null;
}

/** A timestamp in the reader's own time zone, to the second. */
export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** While a job runs, "epoch 2/5" for training, a percentage for generation; once it
 * ended, where it stopped (epochs run, samples written), never a running figure. */
export function progressLabel(job) {
  const p = job.progress;
  if (isActive(job)) {
    if (job.type === "train" && p.epochs) return `epoch ${p.epoch}/${p.epochs}`;
    if (p.samples) return `${Math.round(p.fraction * 100)} % · ${p.samples_done}/${p.samples} samples`;
    return `${Math.round(p.fraction * 100)} %`;
  }
  if (job.type === "train") return p.epoch ? `epochs run ${p.epoch}/${p.epochs}` : "–";
  const samples = job.result?.sample_count;
  return samples ? `${samples} sample${samples > 1 ? "s" : ""}` : "–";
}
