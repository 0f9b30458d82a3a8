"""Settings read from ``PORTALFLOW_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

ENV_PREFIX = "PORTALFLOW_"


class SettingsError(ValueError):
    """A PORTALFLOW_* variable holds a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable, one field per ``PORTALFLOW_<FIELD>`` variable."""

    var_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    email_channel: str = "outbox"
    outbox_dir: Path = Path()
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_tls: str = "none"
    smtp_timeout: float = 10.0
    ses_region: str = "us-east-1"
    ses_endpoint_url: str = ""
    ses_configuration_set: str = ""
    ses_timeout: float = 10.0
    portal_base_url: str = "http://localhost:8000/portal"
    bulk_chunk_size: int = 500
    max_send_attempts: int = 5
    extra_disposable_domains: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Derived defaults live under var_dir, so one variable moves all local state.
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.var_dir / 'portalflow.db'}")
        if self.outbox_dir == Path():
            object.__setattr__(self, "outbox_dir", self.var_dir / "outbox")
        if self.email_channel not in EMAIL_CHANNELS:
            raise SettingsError(
                f"PORTALFLOW_EMAIL_CHANNEL={self.email_channel!r} is not one of "
                f"{', '.join(EMAIL_CHANNELS)}"
            )
        if self.smtp_tls not in SMTP_TLS_MODES:
            raise SettingsError(
                f"PORTALFLOW_SMTP_TLS={self.smtp_tls!r} is not one of {', '.join(SMTP_TLS_MODES)}"
            )
        if not 1 <= self.bulk_chunk_size <= 5000:
            raise SettingsError("PORTALFLOW_BULK_CHUNK_SIZE must be between 1 and 5000")
        if self.max_send_attempts < 1:
            raise SettingsError("PORTALFLOW_MAX_SEND_ATTEMPTS must be at least 1")

    @property
    def embedded_broker(self) -> bool:
        """True when no broker URL is set: Dramatiq's in-process broker is used."""
        return not self.broker_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``PORTALFLOW_*`` variables (``os.environ`` by default)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = environ.get(ENV_PREFIX + spec.name.upper())
            if raw is None or raw == "":
                continue
            values[spec.name] = _parse(spec.name, spec.type, raw)
        return cls(**values)  # type: ignore[arg-type]


EMAIL_CHANNELS = ("outbox", "smtp", "ses")
SMTP_TLS_MODES = ("none", "starttls", "ssl")


def _parse(name: str, type_name: object, raw: str) -> object:
    variable = ENV_PREFIX + name.upper()
    try:
        match type_name:
            case "int":
                return int(raw)
            case "float":
                return float(raw)
            case "Path":
                return Path(raw)
            case "tuple[str, ...]":
                return tuple(part.strip().lower() for part in raw.split(",") if part.strip())
            case _:
                return raw
    except ValueError as exc:
        raise SettingsError(f"{variable}={raw!r} is not a valid {type_name}") from exc
