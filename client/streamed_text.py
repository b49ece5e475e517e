"""`textgen generate --stream`: each sample's text printed as its `text` events bring it.

The samples of one temperature are drawn side by side, so their deltas interleave; the
terminal shows one sample at a time, in order: the first live, the others kept until
their turn, each under its heading when there are several.
"""

from client.follow import sample_heading
from client.records import JobStatus


class StreamedSamples:
    def __init__(self, job, out):
        spec = job["spec"]
        temperature = spec["temperature"]
        temperatures = temperature if isinstance(temperature, list) else [temperature]
        # Sample i of the job: temperature by temperature, num_samples each (worker order).
        self.temperatures = [t for t in temperatures for _ in range(spec["num_samples"])]
        self.prompt = spec.get("prompt")
        self.out = out
        self._start()

    def _start(self):
        self.texts = [""] * len(self.temperatures)
        self.ended = [False] * len(self.temperatures)
        self.current = 0  # the sample being printed
        self.printed = None  # characters of it printed; None: not even its heading

    def event(self, event):
        data = event["data"]
        if (event["type"] == "status" and data["status"] == JobStatus.QUEUED
                and data.get("attempt")):
            # Handed to a new attempt (its worker was lost): it samples everything again.
            self._write(f"\n[attempt {data['attempt']} starts over]\n")
            self._start()
        elif event["type"] == "text":
            for delta in data["deltas"]:
                self.texts[delta["sample"]] += delta["text"]
                self.ended[delta["sample"]] |= delta["end"]
            self._show()

    def _show(self):
        while self.current < len(self.texts):
            text = self.texts[self.current]
            if self.printed is None:
                if len(self.texts) > 1:
                    self._write(sample_heading(self.current + 1,
                                               self.temperatures[self.current]) + "\n")
                self.printed = 0
            new = text[self.printed:]
            if not self.prompt and not text[:self.printed].strip("\n"):
                new = new.lstrip("\n")  # as printed whole: no opening blank lines
            self._write(new)
            self.printed = len(text)
            if not self.ended[self.current]:
                return
            self._write("\n")
            self.current, self.printed = self.current + 1, None

    def _write(self, text):
        if text:
            self.out.write(text)
            self.out.flush()


def stream_samples(client, job, out):
    """Print the job's samples as they are generated; return the job as it ended."""
    printer = StreamedSamples(job, out)
    for event in client.stream_events(job["id"]):
        printer.event(event)
    return client.job(job["id"])
