"""Fault 4: the SES endpoint answers 503 for a while; invitations retry with backoff."""

from __future__ import annotations

from sqlalchemy import func, select

from portalflow.models import Invitation

from . import fleet, tally
from .rig import Rig
from .ses_outage import running_ses_outage_server

RECORDS = 200
CHUNK_SIZE = 100
PROCESSES, THREADS = 1, 4
# The figure. With the pipeline's backoff (5-10, 10-20, 20-40 s after attempts 1-3)
# each invitation fails two or three times and the test takes about 75 s; 15 s would take
# about 35 s, with two failures each.
OUTAGE_SECONDS = 30.0
LEASE_SECONDS = 15
REPLAY_GRACE_SECONDS = 4
SCHEDULER_PERIOD_SECONDS = 2.0
# Dummy credentials only: boto3 must sign requests, and never with the machine's own.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


def test_provider_outage_retries_with_backoff_and_sends_once(
    rig: Rig,
) -> None:
    seeded = rig.seed(RECORDS)
    with running_ses_outage_server() as ses:
        env = rig.worker_env(
            email_channel="ses",
            ses_endpoint_url=ses.url,
            ses_region="us-east-1",
            send_lease_seconds=LEASE_SECONDS,
            replay_grace_seconds=REPLAY_GRACE_SECONDS,
        )
        with (
            fleet.group({**env, **AWS_ENV}, rig.tmp_path / "workers.log", PROCESSES, THREADS),
            rig.scheduler(
                SCHEDULER_PERIOD_SECONDS, lease=LEASE_SECONDS, grace=REPLAY_GRACE_SECONDS
            ),
        ):
            ses.outage.start(OUTAGE_SECONDS)
            rig.wait_finished(rig.start_run(CHUNK_SIZE))
        refused, accepted = ses.outage.refused, list(ses.outage.accepted)

    delivered = tally.email_deliveries(accepted)
    with rig.factory() as session:
        result = rig.count(session, delivered)
        fewest, most = session.execute(
            select(func.min(Invitation.attempts), func.max(Invitation.attempts)).where(
                Invitation.crm_id.in_(list(seeded.eligible))
            )
        ).one()
    rig.report(
        "provider outage",
        result,
        outage_seconds=OUTAGE_SECONDS,
        answered_503=refused,
        answered_200=len(accepted),
        attempts_per_invitation=[fewest, most],
    )
    tally.assert_each_got_one(result, seeded)
    # Every invitation met the outage and was sent on a later attempt.
    assert fewest >= 2
    assert refused >= len(seeded.eligible)
