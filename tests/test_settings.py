import re
from pathlib import Path

import pytest

from shared.contracts.errors import ConfigError
from shared.runtime.settings import Settings, numeric_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_reads_environment(tmp_path):
    s = Settings.from_env({"REDIS_URL": "redis://h:1/2", "TEXTGEN_DATA_DIR": str(tmp_path),
                           "TEXTGEN_MAX_UPLOAD_MB": "2"})
    assert s.redis_url == "redis://h:1/2"
    assert s.data_dir == tmp_path
    assert s.max_upload_bytes == 2 * 1024 * 1024


def test_lists_every_problem_at_once():
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"TEXTGEN_MAX_UPLOAD_MB": "lots", "TEXTGEN_LOG_LEVEL": "LOUD"})
    message = str(e.value)
    assert "REDIS_URL" in message and "TEXTGEN_MAX_UPLOAD_MB" in message
    assert "TEXTGEN_LOG_LEVEL" in message


def test_artifact_store_and_cache_default_to_the_data_dir(tmp_path):
    s = Settings.from_env({"REDIS_URL": "redis://h:1/2", "TEXTGEN_DATA_DIR": str(tmp_path)})
    assert s.artifacts_url == tmp_path.as_uri() and s.s3_endpoint_url is None
    assert s.cache_dir == tmp_path / "cache" and s.cache_max_bytes == 2048 * 1024 * 1024


def test_reads_an_s3_store_and_its_endpoint(tmp_path):
    s = Settings.from_env({"REDIS_URL": "redis://h:1/2", "TEXTGEN_DATA_DIR": str(tmp_path),
                           "TEXTGEN_ARTIFACTS_URL": "s3://textgen/prod",
                           "AWS_ENDPOINT_URL": "http://minio:9000",
                           "TEXTGEN_CACHE_DIR": str(tmp_path / "scratch"),
                           "TEXTGEN_CACHE_MB": "64"})
    assert (s.artifacts_url, s.s3_endpoint_url) == ("s3://textgen/prod", "http://minio:9000")
    assert s.cache_dir == tmp_path / "scratch" and s.cache_max_bytes == 64 * 1024 * 1024


@pytest.mark.parametrize("url", ["http://bucket/x", "s3://", "s3://Bad_Bucket/x",
                                 "s3://bucket/../x", "file://relative/path", "/no/scheme"])
def test_bad_artifact_store_settings_are_listed_together(url):
    with pytest.raises(ConfigError) as e:
        Settings.from_env({"REDIS_URL": "redis://h:1/2", "TEXTGEN_ARTIFACTS_URL": url,
                           "AWS_ENDPOINT_URL": "minio:9000", "TEXTGEN_CACHE_MB": "0"})
    message = str(e.value)
    assert "TEXTGEN_ARTIFACTS_URL" in message and "AWS_ENDPOINT_URL" in message
    assert "TEXTGEN_CACHE_MB" in message


@pytest.mark.parametrize("url, shown", [
    ("redis://:s3cret@redis.example:6379/0", "redis://:***@redis.example:6379/0"),
    ("redis://user:s3cret@redis.example/1", "redis://user:***@redis.example/1"),
    ("redis://redis.example:6379/0", "redis://redis.example:6379/0"),
])
def test_a_password_is_never_shown(url, shown):
    from shared.runtime.settings import redacted

    assert redacted(url) == shown


def test_reads_the_stall_limit_and_extra_training_callbacks(tmp_path):
    base = {"REDIS_URL": "redis://h:1/2", "TEXTGEN_DATA_DIR": str(tmp_path)}
    default = Settings.from_env(base)
    assert default.stall_s is None and default.train_callbacks == ()
    s = Settings.from_env({**base, "TEXTGEN_STALL_S": "90",
                           "TEXTGEN_TRAIN_CALLBACKS": "tests.stuck_step:StuckStep, a.b:C"})
    assert s.stall_s == 90 and s.train_callbacks == ("tests.stuck_step:StuckStep", "a.b:C")
    with pytest.raises(ConfigError) as e:
        Settings.from_env({**base, "TEXTGEN_STALL_S": "0",
                           "TEXTGEN_TRAIN_CALLBACKS": "os.system('x')"})
    assert "TEXTGEN_STALL_S" in str(e.value) and "TEXTGEN_TRAIN_CALLBACKS" in str(e.value)


def test_each_number_is_declared_once_for_the_field_the_variable_and_the_readme(tmp_path):
    """The field's default is what an unset variable gives, a variable in its own unit is
    read into the field, a wrong one is named, and the README gives the same default."""
    unset = Settings.from_env({"REDIS_URL": "redis://h:1/2", "TEXTGEN_DATA_DIR": str(tmp_path)})
    declared = Settings(redis_url="redis://h:1/2", data_dir=tmp_path)
    readme = " ".join(README.read_text().split())
    assert len(numeric_settings()) >= 20
    for name, meta in numeric_settings():
        assert getattr(unset, name) == getattr(declared, name), name
        if meta["default"] is None:
            assert f"`{meta['env']}` (unset" in readme, meta["env"]
        else:  # each mention of it with a bare number in brackets gives the default
            shown = re.findall(rf"`{meta['env']}` \((\d[\d.]*)[:;)]", readme)
            assert shown and {float(n) for n in shown} == {meta["default"]}, \
                f"README: {meta['env']} {shown}, declared {meta['default']:g}"
        twice = Settings.from_env({"REDIS_URL": "redis://h:1/2",
                                   meta["env"]: str(2 * max(meta["default"] or 1, 1))})
        assert getattr(twice, name) == meta["kind"](2 * max(meta["default"] or 1, 1)
                                                     * meta["unit"]), name
        with pytest.raises(ConfigError, match=meta["env"]):
            Settings.from_env({"REDIS_URL": "redis://h:1/2", meta["env"]: "-1"})
