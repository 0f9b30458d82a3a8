"""Dramatiq workers: ``dramatiq portalflow.workers`` runs every portalflow actor.

Importing this package sets the broker from PORTALFLOW_BROKER_URL before the actors are
declared, so the Dramatiq CLI and our own commands see the same broker.
"""

from portalflow.config import Settings

from .broker import install, make_broker

install(make_broker(Settings.from_env()))

from . import (  # noqa: E402
    address_actors,
    licence_actors,
    lifecycle_actors,
    recovery_actors,
    scheduler,
    transfer_actors,
    webhook_actors,
)
from .actors import bulk_invite, dispatch_invitation  # noqa: E402

__all__ = [
    "address_actors",
    "bulk_invite",
    "dispatch_invitation",
    "licence_actors",
    "lifecycle_actors",
    "recovery_actors",
    "scheduler",
    "transfer_actors",
    "webhook_actors",
]
