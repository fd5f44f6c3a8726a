"""Configuration from the environment (`SENTINEL_` prefix), validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sentinel.runtime.keys import KeyRing

ENV_PREFIX = "SENTINEL_"


class ConfigError(Exception):
    """Raised when an environment variable is missing or invalid; the message names it."""


class ServiceSettings(BaseSettings):
    """Settings every service shares. Services subclass it and add their own fields."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Prometheus /metrics HTTP port; unset disables it."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    access_log_slow_ms: float = Field(
        250.0,
        ge=0,
        description="Successful calls this slow or slower are logged at INFO, faster ones at DEBUG "
        "(0 logs every call at INFO); failed calls are always logged, at WARNING.",
    )
    shutdown_grace_s: float = Field(10.0, ge=0, le=300, description="Grace for in-flight calls.")
    max_message_mb: int = Field(64, ge=1, le=1024, description="Max gRPC message size, MiB.")
    max_concurrent_rpcs: int | None = Field(
        None, ge=1, description="Calls beyond this are refused with RESOURCE_EXHAUSTED."
    )
    api_keys: str | None = Field(
        None, description="Comma-separated 'tenant:<sha256 hex of key>'; unset (and no file) = auth off."
    )
    api_keys_file: Path | None = Field(None, description="File of 'tenant:<sha256 hex>' lines.")
    service_api_key: SecretStr | None = Field(
        None, description="Key this service presents to its peers (hashed under tenant '*' there)."
    )

    @field_validator("api_keys")
    @classmethod
    def _api_keys_are_well_formed(cls, value: str | None) -> str | None:
        if value:
            KeyRing.parse(value.split(","))
        return value


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_type: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build settings from the environment (plus explicit overrides), or fail naming the variable.

    Raises:
        ConfigError: one line per invalid variable, e.g. `SENTINEL_PORT='abc': Input should be a
            valid integer`.
    """
    try:
        return settings_type(**overrides)
    except ValidationError as exc:
        prefix = str(settings_type.model_config.get("env_prefix", ENV_PREFIX))
        problems = []
        for error in exc.errors():
            name = prefix + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
