"""Settings read from ``PORTALFLOW_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network, ip_network
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
    # The Redis key prefix of Dramatiq's Redis broker: where workers and producers read and
    # write, and what /ops and `portalflow queues` read (Dramatiq's own default).
    broker_namespace: str = "dramatiq"
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
    # How long a claim on rows holds before recovery may hand them to another worker; a
    # live worker extends it while it works, so it only bounds one provider call and the
    # time a dead or paused worker's rows wait.
    send_lease_seconds: int = 300
    # A worker sends under a claim only while its deadline is at least this far ahead
    # (capped at half the lease); past that it gives the rest of its batch back.
    claim_margin_seconds: float = 30.0
    # Queued work this far past due has lost its message and is enqueued again.
    replay_grace_seconds: int = 300
    # The longest a Redis worker sleeps between polls of an idle real-time queue (CRM
    # events); other queues back off to Dramatiq's `dramatiq_worker_timeout` (1 s).
    realtime_poll_ms: int = 10
    extra_disposable_domains: tuple[str, ...] = field(default_factory=tuple)
    # Bearer token for the admin HTTP API (failure reports); unset: that API refuses.
    admin_token: str = ""
    # Signs the links workers mail and the web app checks (opt-out); unset: var/secret.key.
    secret_key: str = ""
    sms_channel: str = "outbox"
    sms_outbox_dir: Path = Path()
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base_url: str = ""
    twilio_timeout: float = 10.0
    aws_sms_region: str = "ap-south-1"
    aws_sms_endpoint_url: str = ""
    aws_sms_origination_identity: str = ""
    aws_sms_timeout: float = 10.0
    # "dc=domain" pairs overriding the short-link domain of a data centre ("{dc}.zcrm.to").
    sms_short_link_domains: tuple[str, ...] = field(default_factory=tuple)
    # URL prefixes allowed to carry a '?' in an SMS template (dynamic links).
    sms_dynamic_url_prefixes: tuple[str, ...] = field(default_factory=tuple)
    sms_max_variable_length: int = 30
    # "tag=length" pairs overriding the cap for one DLT tag type, e.g. "alphanumeric=40".
    sms_variable_limits: tuple[str, ...] = field(default_factory=tuple)
    # Hour (UTC) of the nightly licence reconciliation fired by `portalflow scheduler`.
    reconcile_hour_utc: int = 2
    # Processed or ignored provider webhook events older than this many days are deleted.
    retention_days: int = 30
    # How long a scheduler holds the Redis lock of one job firing (one enqueue per slot).
    scheduler_lock_seconds: int = 60
    # Provider requests per second, shared by every worker process; 0 (unset): no limit.
    email_max_send_rate: float = 0.0
    sms_max_send_rate: float = 0.0
    # Redis that holds the shared send-rate schedule and the recipient pages' request
    # counters; unset: the Redis broker's own.
    rate_limit_redis_url: str = ""
    # Proxies (IPs or CIDRs) whose X-Forwarded-For is believed; unset: none, the peer is
    # the client.
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    # Comma-separated SNS topic ARNs whose messages POST /webhooks/ses takes (case kept);
    # unset: every SNS message is refused (403 naming this variable).
    sns_topic_arns: str = ""
    # Fernet key(s) that encrypt the CRM webhook endpoints' secrets, comma-separated (the
    # first encrypts, all decrypt); unset: var/webhook.key with the embedded broker, an error
    # with a real one.
    webhook_key: str = ""
    # Networks (CIDRs) a webhook endpoint may resolve to although private, loopback or
    # link-local (e.g. "10.0.0.0/8" for a CRM on the same network); unset: only public ones.
    webhook_allowed_networks: tuple[str, ...] = field(default_factory=tuple)
    # Each webhook POST's connect and read timeout, in seconds.
    webhook_timeout_seconds: float = 5.0
    # Attempts before a delivery is dead; the waits double from the base up to the cap
    # (defaults: 30 s, 1 min, 2 min ... then hourly: about 9 hours in all).
    webhook_max_attempts: int = 15
    webhook_retry_base_seconds: float = 30.0
    webhook_retry_max_seconds: float = 3600.0

    def __post_init__(self) -> None:
        # Derived defaults live under var_dir, so one variable moves all local state.
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.var_dir / 'portalflow.db'}")
        if self.outbox_dir == Path():
            object.__setattr__(self, "outbox_dir", self.var_dir / "outbox")
        if self.sms_outbox_dir == Path():
            object.__setattr__(self, "sms_outbox_dir", self.outbox_dir / "sms")
        _pairs("sms_short_link_domains", self.sms_short_link_domains, str)
        _pairs("sms_variable_limits", self.sms_variable_limits, int)
        _one_of("email_channel", self.email_channel, EMAIL_CHANNELS)
        _one_of("smtp_tls", self.smtp_tls, SMTP_TLS_MODES)
        _one_of("sms_channel", self.sms_channel, SMS_CHANNELS)
        if not 1 <= self.bulk_chunk_size <= 5000:
            raise SettingsError("PORTALFLOW_BULK_CHUNK_SIZE must be between 1 and 5000")
        if not 1 <= self.realtime_poll_ms <= 10_000:
            raise SettingsError("PORTALFLOW_REALTIME_POLL_MS must be between 1 and 10000")
        if self.send_lease_seconds < 2:
            raise SettingsError("PORTALFLOW_SEND_LEASE_SECONDS must be at least 2")
        if self.claim_margin_seconds < 0:
            raise SettingsError("PORTALFLOW_CLAIM_MARGIN_SECONDS must not be negative")
        if self.max_send_attempts < 1:
            raise SettingsError("PORTALFLOW_MAX_SEND_ATTEMPTS must be at least 1")
        if not 0 <= self.reconcile_hour_utc <= 23:
            raise SettingsError("PORTALFLOW_RECONCILE_HOUR_UTC must be between 0 and 23")
        if self.retention_days < 1:
            raise SettingsError("PORTALFLOW_RETENTION_DAYS must be at least 1")
        if self.scheduler_lock_seconds < 1:
            raise SettingsError("PORTALFLOW_SCHEDULER_LOCK_SECONDS must be at least 1")
        self._check_send_rates()
        self.trusted_networks()  # fails early on a malformed entry
        self._check_webhooks()

    def short_link_domain(self, data_centre: str) -> str:
        """The whitelisted short-link domain of a data centre (``in`` -> ``in.zcrm.to``)."""
        overrides = _pairs("sms_short_link_domains", self.sms_short_link_domains, str)
        return str(overrides.get(data_centre, f"{data_centre}.{DEFAULT_SHORT_LINK_SUFFIX}"))

    def trusted_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """PORTALFLOW_TRUSTED_PROXIES as networks (a bare address is a one-address network)."""
        try:
            return tuple(ip_network(entry, strict=False) for entry in self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"PORTALFLOW_TRUSTED_PROXIES: {exc}") from None

    def webhook_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS as networks."""
        try:
            return tuple(ip_network(entry, strict=False) for entry in self.webhook_allowed_networks)
        except ValueError as exc:
            raise SettingsError(f"PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS: {exc}") from None

    def _check_webhooks(self) -> None:
        self.webhook_networks()
        if not 0 < self.webhook_timeout_seconds <= 60:
            raise SettingsError("PORTALFLOW_WEBHOOK_TIMEOUT_SECONDS must be between 0 and 60")
        if self.webhook_max_attempts < 1:
            raise SettingsError("PORTALFLOW_WEBHOOK_MAX_ATTEMPTS must be at least 1")
        if not 0 < self.webhook_retry_base_seconds <= self.webhook_retry_max_seconds:
            raise SettingsError(
                "PORTALFLOW_WEBHOOK_RETRY_BASE_SECONDS must be positive and at most"
                " PORTALFLOW_WEBHOOK_RETRY_MAX_SECONDS"
            )

    def variable_limits(self) -> dict[str, int]:
        """Per DLT tag type, the longest value a variable may take (``var`` is the default)."""
        limits = {"var": self.sms_max_variable_length}
        limits.update(_pairs("sms_variable_limits", self.sms_variable_limits, int))
        return limits

    def _check_send_rates(self) -> None:
        for name in ("email_max_send_rate", "sms_max_send_rate"):
            rate = getattr(self, name)
            if not math.isfinite(rate) or rate < 0:
                raise SettingsError(
                    f"{ENV_PREFIX}{name.upper()}={rate!r} must be a positive number of requests"
                    " per second (unset or 0: no limit)"
                )
        url = self.rate_limit_redis_url
        if url and not url.startswith(REDIS_URL_SCHEMES):
            scheme = url.split(":", 1)[0]  # never echo the rest: it may hold a password
            raise SettingsError(
                f"PORTALFLOW_RATE_LIMIT_REDIS_URL: unsupported scheme {scheme!r}; use one of "
                f"{', '.join(REDIS_URL_SCHEMES)}"
            )
        limited = self.email_max_send_rate or self.sms_max_send_rate
        if limited and not self.embedded_broker and not self.send_rate_redis_url:
            # A limiter local to each process would let N processes send at N times the rate.
            raise SettingsError(
                "PORTALFLOW_EMAIL_MAX_SEND_RATE / PORTALFLOW_SMS_MAX_SEND_RATE need a Redis"
                " shared by every worker: set PORTALFLOW_RATE_LIMIT_REDIS_URL (the broker is"
                " not Redis)"
            )

    @property
    def send_rate_redis_url(self) -> str:
        """The Redis of the shared send-rate limiter; empty: each process limits alone."""
        if self.rate_limit_redis_url:
            return self.rate_limit_redis_url
        return self.broker_url if self.broker_url.startswith(REDIS_URL_SCHEMES) else ""

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
            if spec.name in SECRET_FIELDS:
                raw = _from_file(spec.name, raw, environ)
            if raw is None or raw == "":
                continue
            values[spec.name] = _parse(spec.name, spec.type, raw)
        return cls(**values)  # type: ignore[arg-type]


EMAIL_CHANNELS = ("outbox", "smtp", "ses")
SMS_CHANNELS = ("outbox", "twilio", "aws")
DEFAULT_SHORT_LINK_SUFFIX = "zcrm.to"
SMTP_TLS_MODES = ("none", "starttls", "ssl")
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")
# Settings that may hold a secret: each can also come from a file named by
# PORTALFLOW_<NAME>_FILE (Docker and Kubernetes secrets), so it never sits in the environment.
SECRET_FIELDS = (
    "database_url",
    "broker_url",
    "rate_limit_redis_url",
    "secret_key",
    "webhook_key",
    "admin_token",
    "smtp_password",
    "twilio_auth_token",
)
FILE_SUFFIX = "_FILE"


def _from_file(name: str, raw: str | None, environ: Mapping[str, str]) -> str | None:
    """The value of PORTALFLOW_<NAME>, or the content of the file PORTALFLOW_<NAME>_FILE names."""
    variable = ENV_PREFIX + name.upper()
    path = environ.get(variable + FILE_SUFFIX)
    if not path:
        return raw
    if raw:
        raise SettingsError(f"{variable} and {variable}{FILE_SUFFIX} are both set; set one of them")
    try:
        content = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"{variable}{FILE_SUFFIX}: cannot read {path!r}: {reason}") from None
    # Editors and `echo` end a file with a newline; the secret itself does not.
    value = content[:-2] if content.endswith("\r\n") else content.removesuffix("\n")
    if not value:
        # An empty mounted secret is a mistake, not a wish for the embedded default.
        raise SettingsError(f"{variable}{FILE_SUFFIX}: {path!r} is empty")
    return value


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(
            f"{ENV_PREFIX}{name.upper()}={value!r} is not one of {', '.join(choices)}"
        )


def _pairs(name: str, items: tuple[str, ...], convert: type) -> dict[str, object]:
    """Parse ``key=value`` items, naming the variable when one is malformed."""
    pairs: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError(item)
            pairs[key.strip()] = convert(value.strip())
        except ValueError:
            raise SettingsError(
                f"PORTALFLOW_{name.upper()}: {item!r} is not of the form key=value"
            ) from None
    return pairs


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
