"""shared.contracts.specs: presets as data, partial sections merged onto them, strict validation."""

import pydantic
import pytest

from shared.contracts.specs import (PRESETS, GenerateSpec, TrainingOverrides, TrainSpec,
                          resolve_train_spec)


def test_preset_plus_overrides():
    spec = resolve_train_spec("seed", {"training": {"epochs": 2, "max_seconds": 30}})
    assert spec.preset == "seed"
    assert spec.training.epochs == 2 and spec.training.max_seconds == 30.0
    assert spec.model.model_dump() == PRESETS["seed"]["model"]
    assert PRESETS["seed"]["training"]["epochs"] != 2  # the preset itself is untouched


def test_presets_are_valid_char_level_specs():
    for name, preset in PRESETS.items():
        spec = resolve_train_spec(name, {})
        assert spec.model_dump() == {"preset": name, **preset}
        assert preset["preprocessing"]["level"] == "char"
    spec = resolve_train_spec("default", {"preprocessing": {"level": "word", "max_vocab": 500}})
    assert spec.preprocessing.model_dump() == {"mode": "raw", "level": "word",
                                               "max_vocab": 500}


def test_a_spec_stored_before_word_level_reads_as_a_character_spec():
    stored = resolve_train_spec("seed", {}).model_dump()
    stored["preprocessing"] = {"mode": "tutorial"}  # a model's config before word level
    spec = TrainSpec.model_validate(stored)
    assert spec.preprocessing.level == "char"
    assert spec == resolve_train_spec("seed", {})


def test_matmul_precision_bfloat16_in_the_default_preset_float32_for_specs_before_it():
    assert resolve_train_spec("default", {}).training.matmul_precision == "bfloat16"
    assert resolve_train_spec("seed", {}).training.matmul_precision == "float32"
    asked = resolve_train_spec("default", {"training": {"matmul_precision": "float32"}})
    assert asked.training.matmul_precision == "float32"
    stored = resolve_train_spec("default", {}).model_dump()
    del stored["training"]["matmul_precision"]  # a queued job or a model's config from before
    assert TrainSpec.model_validate(stored).training.matmul_precision == "float32"
    with pytest.raises(pydantic.ValidationError, match="'float32' or 'bfloat16'"):
        resolve_train_spec("default", {"training": {"matmul_precision": "float16"}})


def test_with_training_replaces_those_fields_only():
    spec = resolve_train_spec("default", {})
    longer = spec.with_training(epochs=40, max_seconds=60.0)
    assert (longer.training.epochs, longer.training.max_seconds) == (40, 60.0)
    assert longer.with_training(epochs=spec.training.epochs,
                                max_seconds=spec.training.max_seconds) == spec
    assert spec.training.epochs != 40  # the original is untouched


def test_seed_preset_is_the_tutorial():
    seed = PRESETS["seed"]
    assert seed["preprocessing"]["mode"] == "tutorial"
    model = seed["model"]
    assert (model["units"], model["layers"], model["dropout"]) == (256, 3, 0.2)
    assert (seed["training"]["seq_length"], seed["training"]["batch_size"]) == (100, 256)


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": "3"}, "valid integer"),  # no coercion of "3" to 3
    ({"epochs": 1.5}, "valid integer"),
    ({"epochs": True}, "valid integer"),
    ({"epochs": None}, "valid integer"),  # null only where the spec allows it
    ({"learning_rate": float("nan")}, "finite"),
    ({"epochs": 0}, "greater than or equal to 1"),
    ({"colour": "red"}, "Extra inputs"),
])
def test_a_partial_section_is_strict(overrides, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        pydantic.TypeAdapter(TrainingOverrides).validate_python(overrides)


def test_null_is_accepted_where_it_means_none():
    checked = pydantic.TypeAdapter(TrainingOverrides).validate_python(
        {"max_seconds": None, "patience": None})
    assert checked == {"max_seconds": None, "patience": None}


def test_generate_defaults_and_seed_chosen():
    spec = GenerateSpec.model_validate({"model_id": "mdl_1", "temperature": 0})
    assert spec.temperature == 0.0 and spec.length == 200 and spec.num_samples == 1
    assert isinstance(spec.seed, int)  # chosen now, stored with the job: reproducible
    assert GenerateSpec.model_validate(spec.model_dump()).seed == spec.seed


def test_a_temperature_list_gives_samples_per_value():
    spec = GenerateSpec.model_validate({"model_id": "m", "temperature": [0, 0.5, 1],
                                        "num_samples": 2})
    assert spec.temperatures == [0.0, 0.5, 1.0]
    with pytest.raises(pydantic.ValidationError, match="at most 64"):
        GenerateSpec.model_validate({"model_id": "m", "temperature": [1.0] * 16,
                                     "num_samples": 5})
