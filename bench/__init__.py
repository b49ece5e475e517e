"""Benchmarks: scripts that print figures (bench/README.md). Importing the package costs
nothing; bench.common brings TensorFlow for the training benches."""

from pathlib import Path

HANDOUTS = Path(__file__).resolve().parents[2] / "shared"  # ../shared beside the checkout
