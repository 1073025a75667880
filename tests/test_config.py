"""Configuration loading: defaults, [env.*] overrides, environment variables, errors naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unified_events.config import Config, load_config
from unified_events.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "ue.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_original():
    c = load_config(environ={})
    assert (c.hot_tier_retention_ms, c.max_connections, c.max_topics, c.cleanup_interval_ms) == (300000, 10000, 10000, 60000)
    assert (c.max_pending_messages, c.dedup_window_ms, c.topic_ttl, c.require_auth, c.token_ttl) == (100, 60000, 0, False, 3600)
    assert (c.rate_limit.messages_per_second, c.rate_limit.burst_size) == (1000, 1000)
    assert (c.fan_out.batch_size, c.fan_out.yield_interval_ms) == (1000, 0)
    assert (c.http_port, c.ws_port, c.data_dir) == (8787, 8788, "./data")


def test_env_table_overrides_top_level(tmp_path):
    path = write(tmp_path, 'max_connections = 5\n[rate_limit]\nburst_size = 7\n'
                           '[env.production]\nmax_connections = 50\n[env.production.rate_limit]\nburst_size = 70\n')
    assert load_config(path, environ={}).max_connections == 5
    prod = load_config(path, environ={"ENVIRONMENT": "production"})
    assert prod.max_connections == 50 and prod.rate_limit.burst_size == 70
    assert prod.rate_limit.messages_per_second == 1000  # the rest of the table keeps its default
    assert load_config(path, environment="production", environ={}).environment == "production"


def test_precedence_file_then_environment_then_flags(tmp_path):
    path = write(tmp_path, "http_port = 9000\n")
    assert load_config(path, environ={}).http_port == 9000
    assert load_config(path, environ={"UE_HTTP_PORT": "9100"}).http_port == 9100
    assert load_config(path, environ={"UE_HTTP_PORT": "9100"}, overrides={"http_port": 9200}).http_port == 9200


@pytest.mark.parametrize("text,key", [
    ("max_connections = -1\n", "max_connections"),
    ("max_connections = 'many'\n", "max_connections"),
    ("require_auth = 1\n", "require_auth"),
    ("bogus_key = 1\n", "bogus_key"),
    ("[rate_limit]\nburst = 3\n", "rate_limit.burst"),
    ("[fan_out]\nbatch_size = 0\n", "fan_out.batch_size"),
    ("[env.prod]\nmax_topics = 3\n", "env.prod"),
    ("http_port = 70000\n", "http_port"),
    ("http_port = 9000\nws_port = 9000\n", "ws_port"),
])
def test_config_errors_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    assert info.value.key == key
    assert key in str(info.value)


def test_bad_environment_variable_names_the_variable():
    with pytest.raises(ConfigError) as info:
        load_config(environ={"UE_WS_PORT": "abc"})
    assert "UE_WS_PORT" in str(info.value)


def test_cli_refuses_to_start_with_a_config_error(tmp_path):
    path = write(tmp_path, "max_topics = 0\n")
    result = subprocess.run([sys.executable, "-m", "unified_events.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "max_topics" in result.stderr


def test_cli_help_names_environment_variables():
    result = subprocess.run([sys.executable, "-m", "unified_events.cli", "serve", "--help"],
                            capture_output=True, text=True, timeout=30)
    for var in ("UE_CONFIG", "UE_ENV", "UE_HOST", "UE_HTTP_PORT", "UE_WS_PORT", "UE_DATA_DIR"):
        assert var in result.stdout


def test_check_prints_json(tmp_path):
    result = subprocess.run([sys.executable, "-m", "unified_events.cli", "serve", "--check", "--json",
                             "--config", str(write(tmp_path, "max_topics = 9\n"))],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and '"max_topics": 9' in result.stdout


def test_example_config_file_is_valid():
    from pathlib import Path

    config = load_config(Path(__file__).parent.parent / "unified-events.toml", environ={})
    assert config == Config(**{**Config().__dict__, "log_level": "info"})
