"""What every fault test sets up: a seeded world, the workers' settings, a run, its tally."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bench import harness

from ..smtp_server import SmtpServer
from . import fleet, tally, world


@dataclass
class Rig:
    """One fault test's private servers, its session factory and the world it seeded."""

    database_url: str
    redis_server: harness.PrivateRedis
    tmp_path: Path
    factory: sessionmaker[Session]
    get_mail_sink: Callable[[], SmtpServer]
    records: int = 0
    seeded: world.World | None = None
    began: float = field(default_factory=time.monotonic)

    @cached_property
    def mail_sink(self) -> SmtpServer:
        """The SMTP sink, started only for the tests that send through it."""
        return self.get_mail_sink()

    @property
    def world(self) -> world.World:
        assert self.seeded is not None, "seed() first"
        return self.seeded

    def seed(
        self, records: int, seeder: Callable[[str, int], world.World] | None = None
    ) -> world.World:
        """Start the clock and seed ``records`` contacts (or what ``seeder`` seeds)."""
        self.began = time.monotonic()
        self.records = records
        self.seeded = (seeder or world.seed)(self.database_url, records)
        return self.seeded

    def worker_env(self, **settings: object) -> dict[str, str]:
        return harness.worker_env(
            self.database_url, self.redis_server.url, self.tmp_path / "var", **settings
        )

    def smtp_env(self, **settings: object) -> dict[str, str]:
        """The workers' settings, sending through the SMTP sink."""
        return self.worker_env(**harness.smtp_settings(self.mail_sink.port), **settings)

    def scheduler(
        self,
        period: float,
        *,
        lease: float,
        grace: float,
        max_attempts: int = 5,
        env: dict[str, str] | None = None,
    ) -> AbstractContextManager[fleet.Replays]:
        """The test playing the scheduler; with ``env`` (the workers'), it asks their SMS
        channel about lost receipts, as the recovery actor does."""
        return fleet.playing_scheduler(
            self.database_url,
            period,
            lease=lease,
            grace=grace,
            max_attempts=max_attempts,
            env=env,
        )

    def start_run(self, chunk_size: int) -> int:
        """Start the bulk run over the seeded world; its id."""
        with self.factory() as session:
            return world.start_run(session, self.world, chunk_size).run_id

    def finished(self, run_id: int) -> bool:
        return fleet.run_finished(self.factory, run_id)

    def wait_finished(self, run_id: int) -> None:
        fleet.wait_until(partial(self.finished, run_id), "the end of the run")

    def wait_sent_share(self, run_id: int, share: float) -> int:
        """Wait until ``share`` of the eligible records are sent; how many were."""
        sent = partial(fleet.sent_so_far, self.factory, run_id)
        fleet.wait_until(lambda: sent() >= share * len(self.world.eligible), "progress")
        return sent()

    def smtp_deliveries(self) -> list[tally.Delivered]:
        return tally.email_deliveries((m.rcpt_tos, m.content) for m in self.mail_sink.messages)

    def count(self, session: Session, delivered: list[tally.Delivered]) -> tally.Tally:
        return tally.count(session, self.world, delivered)

    def report(self, test: str, result: tally.Tally, **figures: object) -> None:
        """The figures every test prints around its own: records, eligible, lost, ..."""
        tally.report(
            test,
            records=self.records,
            eligible=len(self.world.eligible),
            **figures,
            lost=len(result.lost),
            duplicates=result.duplicate_count,
            seconds=round(time.monotonic() - self.began, 1),
        )
