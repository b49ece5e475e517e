"""The `default` preset's shape in PyTorch, for bench.train_speed's comparator row: what a
user would pick instead (PyTorch's CPU LSTM runs on oneDNN's fused RNN primitive).

Runs under a separate interpreter that has torch (never the service's .venv; see
bench/README.md for the install), imports nothing of ours, and prints one JSON number: the
5th-percentile step time in seconds, measured as bench.train_speed measures ours.

    /work/torch-venv/bin/python bench/torch_lstm.py --threads 2
"""

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

# The default preset: vocab of tinyshakespeare, embedding 64, LSTM 2x128, batch 64 x 64,
# Adam at 1e-2, clipping at norm 1 (shared/contracts/specs.py; bench.train_speed's constants).
VOCAB, EMBEDDING, UNITS, LAYERS, BATCH, WINDOW = 65, 64, 128, 2, 64, 64
WARMUP_STEPS, STEPS = 3, 60


class CharLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMBEDDING)
        self.lstm = nn.LSTM(EMBEDDING, UNITS, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(UNITS, VOCAB)

    def forward(self, ids):
        outputs, _ = self.lstm(self.embedding(ids))  # a zero state, as ours
        return self.head(outputs)  # (batch, window, vocab) logits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = CharLSTM()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x, y = (torch.from_numpy(rng.integers(0, VOCAB, (BATCH, WINDOW))) for _ in range(2))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x).reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()  # waits for the step, as train_on_batch does

    for _ in range(WARMUP_STEPS):
        step()
    times = []
    for _ in range(STEPS):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    print(json.dumps(float(np.percentile(times, 5))))


if __name__ == "__main__":
    main()
