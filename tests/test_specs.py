import pytest

from shared.errors import MalformedRequestError, ValidationError
from shared.specs import PRESETS, validate_generate_request, validate_train_request


def test_preset_plus_overrides():
    corpus_id, spec = validate_train_request(
        {"corpus_id": "cor_1", "preset": "seed", "training": {"epochs": 2, "max_seconds": 30}})
    assert corpus_id == "cor_1"
    assert spec["preset"] == "seed"
    assert spec["training"]["epochs"] == 2
    assert spec["training"]["max_seconds"] == 30.0
    assert spec["model"] == PRESETS["seed"]["model"]
    assert PRESETS["seed"]["training"]["epochs"] != 2  # the preset itself is untouched


def test_presets_are_char_level_and_word_level_is_asked_for():
    for preset in PRESETS.values():
        assert preset["preprocessing"]["level"] == "char"
        assert preset["preprocessing"]["max_vocab"] == 10_000
    _, spec = validate_train_request(
        {"corpus_id": "c", "preprocessing": {"level": "word", "max_vocab": 500}})
    assert spec["preprocessing"] == {"mode": "raw", "level": "word", "max_vocab": 500}


def test_seed_preset_is_the_tutorial():
    seed = PRESETS["seed"]
    assert seed["preprocessing"]["mode"] == "tutorial"
    assert (seed["model"]["units"], seed["model"]["layers"], seed["model"]["dropout"]) == (256, 3, 0.2)
    assert (seed["training"]["seq_length"], seed["training"]["batch_size"]) == (100, 256)


@pytest.mark.parametrize("body, field", [
    ({}, "corpus_id"),
    ({"corpus_id": 5}, "corpus_id"),
    ({"corpus_id": "c", "preset": "huge"}, "preset"),
    ({"corpus_id": "c", "colour": "red"}, "colour"),
    ({"corpus_id": "c", "training": []}, "training"),
    ({"corpus_id": "c", "training": {"epochs": "3"}}, "training.epochs"),
    ({"corpus_id": "c", "training": {"epochs": True}}, "training.epochs"),
    ({"corpus_id": "c", "training": {"epochs": 0}}, "training.epochs"),
    ({"corpus_id": "c", "training": {"batch_size": 2.5}}, "training.batch_size"),
    ({"corpus_id": "c", "training": {"validation_fraction": 0.9}}, "training.validation_fraction"),
    ({"corpus_id": "c", "training": {"learning_rate": None}}, "training.learning_rate"),
    ({"corpus_id": "c", "model": {"units": 1e9}}, "model.units"),
    ({"corpus_id": "c", "model": {"architecture": "gpt"}}, "model.architecture"),
    ({"corpus_id": "c", "model": {"dropout": float("nan")}}, "model.dropout"),
    ({"corpus_id": "c", "preprocessing": {"unknown": 1}}, "preprocessing.unknown"),
    ({"corpus_id": "c", "preprocessing": {"level": "byte"}}, "preprocessing.level"),
    ({"corpus_id": "c", "preprocessing": {"max_vocab": 1}}, "preprocessing.max_vocab"),
    ({"corpus_id": "c", "preprocessing": {"max_vocab": 200_001}}, "preprocessing.max_vocab"),
])
def test_bad_train_fields_name_the_field(body, field):
    with pytest.raises(ValidationError) as e:
        validate_train_request(body)
    assert e.value.field == field


def test_body_must_be_an_object():
    with pytest.raises(MalformedRequestError):
        validate_train_request([1, 2])


def test_generate_defaults_and_seed_chosen():
    spec = validate_generate_request({"model_id": "mdl_1", "temperature": 0})
    assert spec["temperature"] == 0.0 and spec["length"] == 200 and spec["num_samples"] == 1
    assert isinstance(spec["seed"], int)  # chosen now, stored with the job: reproducible


@pytest.mark.parametrize("body, field", [
    ({}, "model_id"),
    ({"model_id": "m", "length": 0}, "length"),
    ({"model_id": "m", "temperature": -1}, "temperature"),
    ({"model_id": "m", "num_samples": 1000}, "num_samples"),
    ({"model_id": "m", "prompt": 7}, "prompt"),
    ({"model_id": "m", "seed": "x"}, "seed"),
])
def test_bad_generate_fields_name_the_field(body, field):
    with pytest.raises(ValidationError) as e:
        validate_generate_request(body)
    assert e.value.field == field
