from __future__ import annotations

import pytest
from pydantic import Field

from sentinel.runtime.settings import ConfigError, ServiceSettings, load_settings


class ExampleSettings(ServiceSettings):
    storage_addr: str = Field("127.0.0.1:50053", min_length=1)
    batch_size: int = Field(1000, ge=1)


def test_settings_come_from_sentinel_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_PORT", "6000")
    monkeypatch.setenv("SENTINEL_BATCH_SIZE", "50")
    monkeypatch.setenv("PORT", "7000")  # unprefixed names are not ours

    settings = load_settings(ExampleSettings)

    assert settings.port == 6000
    assert settings.batch_size == 50


def test_invalid_env_value_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_PORT", "not-a-port")

    with pytest.raises(ConfigError, match=r"SENTINEL_PORT='not-a-port': .*integer"):
        load_settings(ExampleSettings)


def test_every_invalid_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_PORT", "70000")
    monkeypatch.setenv("SENTINEL_BATCH_SIZE", "0")
    monkeypatch.setenv("SENTINEL_LOG_LEVEL", "LOUD")

    with pytest.raises(ConfigError) as raised:
        load_settings(ExampleSettings)

    message = str(raised.value)
    for name in ("SENTINEL_PORT", "SENTINEL_BATCH_SIZE", "SENTINEL_LOG_LEVEL"):
        assert name in message


def test_settings_are_frozen_once_built() -> None:
    settings = load_settings(ExampleSettings)
    with pytest.raises(Exception, match="frozen"):
        settings.port = 1  # type: ignore[misc]


def test_malformed_api_keys_fail_at_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_API_KEYS", "acme:not-a-hash")

    with pytest.raises(ConfigError, match="SENTINEL_API_KEYS"):
        load_settings(ExampleSettings)
