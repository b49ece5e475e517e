"""A trained model as a local directory with everything needed to sample it.

    model.keras    the Keras model (architecture + weights); input token ids (batch, time)
    vocab.json     the tokens in id order (worker.vocab.Vocab.to_json): characters or words,
                   as config.json's preprocessing.level says
    config.json    the spec it was trained with (TrainSpec.model_dump()), what its input
                   and output mean, lineage
    metrics.json   final metrics and the per-epoch history

save_model writes them into a private scratch directory, which the artifact store then
publishes (shared/stores/artifacts.py: publish_model, and local_model_dir for the way back); the
store, not this module, makes sure no reader sees a model half written. Loading uses Keras
safe mode: no pickled code, and reads the spec back as a TrainSpec.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import keras

from shared.stores.artifacts import MODEL_FILES
from shared.contracts.errors import ArtifactMissingError
from shared.runtime.json_values import finite
from shared.contracts.specs import TrainSpec
from worker.models import INPUT_DESCRIPTION, OUTPUT_DESCRIPTION
from worker.vocab import Vocab

FORMAT = 1  # bump when the layout or the meaning of config.json changes
FILES = MODEL_FILES  # model.keras, vocab.json, config.json, metrics.json


@dataclass
class LoadedModel:
    model: keras.Model
    vocab: Vocab
    spec: TrainSpec  # the spec it was trained with


def save_model(model_dir, trained, spec: TrainSpec, lineage):
    """Write `trained` (a worker.training.TrainedModel) into the local directory `model_dir`."""
    architecture = spec.model.architecture
    config = {
        **spec.model_dump(),
        "format": FORMAT,
        # The rest is for a reader of the file; load_model reads back only the spec.
        "architecture": architecture,
        "input": INPUT_DESCRIPTION,
        "output": OUTPUT_DESCRIPTION[architecture],
        "vocab_size": trained.vocab.size,
        "seq_length": spec.training.seq_length,
        "lineage": lineage,
    }
    metrics = {**trained.metrics, "stop_reason": trained.stop_reason.value,
               "history": trained.history}
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    trained.model.save(model_dir / "model.keras")
    (model_dir / "vocab.json").write_text(_dumps(trained.vocab.to_json()), encoding="utf-8")
    (model_dir / "config.json").write_text(_dumps(config), encoding="utf-8")
    (model_dir / "metrics.json").write_text(_dumps(metrics), encoding="utf-8")


def load_model(model_dir):
    """Load a model saved by save_model; ArtifactMissingError if any file is missing."""
    model_dir = Path(model_dir)
    missing = [name for name in FILES if not (model_dir / name).is_file()]
    if missing:
        raise ArtifactMissingError(
            f"model directory {model_dir.name} lacks {', '.join(missing)}")
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    spec = TrainSpec.model_validate({name: value for name, value in config.items()
                                     if name in TrainSpec.model_fields})
    tokens = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
    vocab = Vocab.from_json(tokens, spec.preprocessing.level)
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    return LoadedModel(model=model, vocab=vocab, spec=spec)


def _dumps(obj):
    # A diverged run has NaN or inf losses, which are not JSON: they are written as null.
    return json.dumps(finite(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
