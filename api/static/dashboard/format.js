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

/** How long a job ran: start to end, or to now while it runs. */
export function jobDuration(job) {
  if (!job.started_at) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return (end - Date.parse(job.started_at)) / 1000;
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

/** "epoch 2/5" for training, a percentage for generation. */
export function progressLabel(job) {
  const p = job.progress;
  if (job.type === "train" && p.epochs) return `epoch ${p.epoch}/${p.epochs}`;
  return `${Math.round(p.fraction * 100)} %`;
}
