"""A generation job's text as it is sampled: what each sample gained, at a bounded rate.

generate() (worker/sampling.py) shows every step to `watch`; the first step and then at
most one step every FLUSH_S (longer when building the text took long) send what every
sample gained since as one `text` event, with the job's progress, in one fenced write:

    {"deltas": [{"sample": 0, "text": "The qu", "end": false}, ...]}

`sample` counts over the job (temperature by temperature, num_samples each). A sample's
deltas, joined, are exactly its text in the result, prompt included; its last one has
`end: true`. What may still change waits:

- character models: each character goes out once drawn, except, with a `stop`, the last
  len(stop) - 1, which may begin the stop string;
- word models: whole lines only, since the detokenizer may still respace the line being
  written (it works line by line, so an ended line is final); with a `stop`, also the
  lines a stop string could still reach back into.
"""

import logging
import time

import redis

from worker.vocab import CHAR, detokenize, tokenize

log = logging.getLogger(__name__)

FLUSH_S = 0.1  # between two text events: 10 a second at most, however fast the sampler
# Building the text of long word samples is O(length) per flush: wait at least this many
# times the last build, so streaming never costs more than ~1/COST_FACTOR of the job.
COST_FACTOR = 10


def with_prompt(vocab, prompt, continuation):
    """A sample's text as the result holds it: the prompt, then the continuation."""
    if not prompt:
        return continuation
    if vocab.level == CHAR:
        return prompt + continuation
    return detokenize(tokenize(prompt) + tokenize(continuation))


class TextStream:
    """Sends a generation job's deltas through `send(data, progress, final) -> appended`
    (a False `appended` on a non-final event: the job's cap of text events is reached, and
    the rest waits for the final one). Call `batch()` before each temperature's generate(),
    its result's `watch`, then `finish()` with the texts."""

    def __init__(self, vocab, prompt, stop, samples, length, send, job_id):
        self.vocab, self.prompt, self.stop = vocab, prompt, stop
        self.samples, self.length = samples, length  # over the job; tokens per sample
        self.send, self.job_id = send, job_id
        self.offset = 0  # the first sample of the current batch
        self.sent = []  # per sample of the batch: characters sent
        self.ended = 0  # samples whose last delta went out
        self.chars_sent = 0
        self.tokens_done = 0  # of the batches before this one
        self.capped = False
        self.started = time.monotonic()
        self.next_flush = 0.0  # the first step flushes at once: text within milliseconds

    def batch(self, num_samples):
        self.offset += len(self.sent)
        self.sent = [0] * num_samples
        return self.watch

    def watch(self, ids, ends):
        now = time.monotonic()
        if self.capped or now < self.next_flush:
            return
        deltas = []
        for i, row in enumerate(ids):
            text = self._new_text(i, row, ends[i])
            if text:
                deltas.append({"sample": self.offset + i, "text": text, "end": False})
        tokens = self.tokens_done + ids.size
        if deltas and self._send(deltas, tokens, final=False):
            for delta in deltas:
                self.sent[delta["sample"] - self.offset] += len(delta["text"])
        self.next_flush = now + max(FLUSH_S, COST_FACTOR * (time.monotonic() - now))

    def finish(self, texts, tokens):
        """The batch ended with `texts` (prompt included) after `tokens` steps each."""
        deltas = [{"sample": self.offset + i, "text": text[self.sent[i]:], "end": True}
                  for i, text in enumerate(texts)]
        self.ended += len(texts)
        self.tokens_done += tokens * len(texts)
        self._send(deltas, self.tokens_done, final=True)
        self.sent = [len(text) for text in texts]

    def _send(self, deltas, tokens, final):
        chars = self.chars_sent + sum(len(delta["text"]) for delta in deltas)
        steps = self.samples * self.length
        elapsed_s = time.monotonic() - self.started
        fraction = min(tokens / steps, 1.0)
        progress = {"epoch": 0, "epochs": None, "step": tokens, "steps": steps,
                    "fraction": fraction,
                    "eta_seconds": elapsed_s * (1 - fraction) / fraction if fraction else None,
                    "samples": self.samples, "samples_done": self.ended, "chars_done": chars}
        try:
            appended = self.send({"deltas": deltas}, progress, final)
        except redis.RedisError as e:
            # The text waits for the next flush; the result holds it all in any case.
            log.warning("job %s: text not sent (%s)", self.job_id, type(e).__name__)
            return False
        if appended:
            self.chars_sent = chars
        elif not final:
            self.capped = True  # the rest goes with each batch's final event
        return appended

    def _new_text(self, i, ids, end):
        """What sample `i` of the batch gained that can no longer change."""
        vocab, sent = self.vocab, self.sent[i]
        if end is not None:  # `stop` ended it: this is its text
            return with_prompt(vocab, self.prompt, end)[sent:]
        hold = len(self.stop) - 1 if self.stop else 0
        if vocab.level == CHAR:
            # Only the characters not sent yet are joined: O(new) per flush. The prompt is
            # final at once (a stop string in it does not count).
            drawn = max(len(ids) - hold, 0)
            first = max(sent - len(self.prompt), 0)
            return self.prompt[sent:] + vocab.join(
                [vocab.tokens[j] for j in ids[first:drawn].tolist()])
        continuation = vocab.join([vocab.tokens[j] for j in ids.tolist()])
        # Lines of the continuation a stop string cannot reach back into: those that ended
        # len(stop) characters before the current line's start.
        reach = continuation.rfind("\n") + 1 - (len(self.stop) if self.stop else 0)
        lines = self.prompt.count("\n") + continuation.count("\n", 0, max(reach, 0))
        if lines == 0:
            return ""
        *kept, _ = with_prompt(vocab, self.prompt, continuation).split("\n", lines)
        return ("\n".join(kept) + "\n")[sent:]
