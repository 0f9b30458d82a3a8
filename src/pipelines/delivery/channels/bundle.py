"""The channels one dispatch may use, each built on first use and closed together."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import build_email_channel, build_sms_channel
from .base import EmailChannel
from .rate_limit import Paced

if TYPE_CHECKING:
    from portalflow.config import Settings

    from .rate_limit import SendRates
    from .sms_base import SmsChannel


class Channels:
    """An email and an SMS channel, built lazily: a chunk of emails never opens Twilio."""

    def __init__(
        self,
        email: Callable[[], EmailChannel] | None = None,
        sms: Callable[[], SmsChannel] | None = None,
    ) -> None:
        self._factories = {"email": email, "sms": sms}
        self._built: dict[str, EmailChannel | SmsChannel] = {}

    @classmethod
    def from_settings(cls, settings: Settings, rates: SendRates | None = None) -> Channels:
        """Channels of the kinds the settings name, each paced by its limiter in ``rates``."""

        def email() -> EmailChannel:
            channel = build_email_channel(settings)
            return Paced(channel, rates.email) if rates and rates.email else channel

        def sms() -> SmsChannel:
            channel = build_sms_channel(settings)
            return Paced(channel, rates.sms) if rates and rates.sms else channel

        return cls(email, sms)

    @property
    def email(self) -> EmailChannel:
        return self._get("email")  # type: ignore[return-value]

    @property
    def sms(self) -> SmsChannel:
        return self._get("sms")  # type: ignore[return-value]

    def close(self) -> None:
        for channel in self._built.values():
            channel.close()
        self._built.clear()

    def _get(self, kind: str) -> EmailChannel | SmsChannel:
        if kind not in self._built:
            factory = self._factories[kind]
            if factory is None:
                raise RuntimeError(f"no {kind} channel is configured for this dispatch")
            self._built[kind] = factory()
        return self._built[kind]
