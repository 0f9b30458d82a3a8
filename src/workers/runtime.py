"""What a worker process holds: settings, the database engine, channel factories."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import DataCentre, make_engine, make_session_factory
from portalflow.models import session_scope as _session_scope
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.delivery.channels.rate_limit import SendRates, send_rates
from portalflow.pipelines.delivery.claims import Lease
from portalflow.pipelines.delivery.dispatch_config import DispatchConfig
from portalflow.pipelines.invitations.link_keys import link_key


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    # One per process: every thread's channels share it (and its Redis connections).
    send_rates: SendRates = field(default_factory=SendRates)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with _session_scope(self.session_factory) as session:
            yield session

    def channels(self) -> Channels:
        """Fresh channels for one dispatch (each built on first use); close them after."""
        return Channels.from_settings(self.settings, self.send_rates)

    def dispatch_config(self) -> DispatchConfig:
        settings = self.settings
        return DispatchConfig(
            portal_base_url=settings.portal_base_url,
            max_attempts=settings.max_send_attempts,
            short_link_domains={
                dc.value: settings.short_link_domain(dc.value) for dc in DataCentre
            },
            variable_limits=settings.variable_limits(),
            lease=Lease(settings.send_lease_seconds, settings.claim_margin_seconds),
            link_key=link_key(settings),
        )

    def close(self) -> None:
        self.engine.dispose()
        self.send_rates.close()


_lock = threading.Lock()
_current: Runtime | None = None


def configure(settings: Settings | None = None) -> Runtime:
    """Replace the process's runtime (settings from the environment by default)."""
    global _current
    runtime = _build(settings or Settings.from_env())
    with _lock:
        previous, _current = _current, runtime
    if previous is not None:
        previous.close()
    return runtime


def current() -> Runtime:
    """The process's runtime, configured from the environment on first use."""
    global _current
    # Built under the lock: a worker's threads all ask at once on their first message, and
    # each building its own would leave the process with one engine (and pool) per thread.
    with _lock:
        if _current is None:
            _current = _build(Settings.from_env())
        return _current


def _build(settings: Settings) -> Runtime:
    engine = make_engine(settings.database_url)
    return Runtime(settings, engine, make_session_factory(engine), send_rates(settings))
