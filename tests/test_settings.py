import pytest

from shared.errors import ConfigError
from shared.settings import Settings


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
