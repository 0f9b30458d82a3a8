"""``portalflow demo``: a real bulk invite on seeded data, embedded, no servers needed."""

from __future__ import annotations

import email
import re
import shutil
from email.policy import default as default_policy
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from portalflow.config import Settings
from portalflow.demo import world as demo_world
from portalflow.demo.plan import RunPlan
from portalflow.models.schema import upgrade
from portalflow.pipelines.invitations import bulk
from portalflow.pipelines.ops import reports

from .common import console, print_json, settings
from .invite import reason_table
from .waiting import wait_for_runs

DEMO_TIMEOUT_SECONDS = 600.0
# The demo's links use the default PORTALFLOW_PORTAL_BASE_URL, which `portalflow serve` serves.
ACCEPT_LINK = re.compile(r"https?://\S+?/accept\?token=[A-Za-z0-9_\-]+")


def demo(
    contacts: Annotated[
        int, typer.Option(min=50, max=100_000, help="How many contacts to seed.")
    ] = 1000,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"sent": N, "failed": {...}} as JSON.')
    ] = False,
) -> None:
    """Seed an org with contacts (every failure reason included) and invite them all.

    Runs embedded whatever the environment says: a fresh SQLite database and a file
    outbox under `<PORTALFLOW_VAR_DIR or ./var>/demo/`, Dramatiq's in-process broker and a
    real worker. Each `.eml` file in the outbox is one invitation email.
    """
    demo_dir = settings().var_dir / "demo"
    config = _fresh_demo_settings(demo_dir)
    upgrade(config.database_url)

    from portalflow.workers import enqueue, runtime
    from portalflow.workers.embedded import embedded_worker

    current = runtime.configure(config)
    with current.session() as session:
        world = demo_world.seed(
            session, config=config, dlt_file=demo_dir / "dlt-approved.csv", contacts=contacts
        )
    with embedded_worker():
        warm_up = _start(current, world.warm_up, config)
        enqueue.enqueue_chunks(warm_up.chunk_ids)
        wait_for_runs(current.session_factory, [warm_up.run_id], label="Earlier invite")
        started = [_start(current, plan, config) for plan in world.runs]
        for run in started:
            enqueue.enqueue_chunks(run.chunk_ids)
        wait_for_runs(
            current.session_factory,
            [run.run_id for run in started],
            label="Bulk invite",
            timeout=DEMO_TIMEOUT_SECONDS,
        )
    run_ids = [warm_up.run_id, *(run.run_id for run in started)]
    with current.session() as session:
        summary = reports.summary(session, run_ids)
        per_run = [reports.bulk_run_report(session, run_id, limit=0) for run_id in run_ids]
    current.close()
    if as_json:
        print_json(summary)
        return
    _print_summary(summary, per_run, [world.warm_up, *world.runs], config)


def _fresh_demo_settings(demo_dir: Path) -> Settings:
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True)
    return Settings(
        var_dir=demo_dir,
        database_url=f"sqlite:///{demo_dir / 'portalflow.db'}",
        email_channel="outbox",
        outbox_dir=demo_dir / "outbox",
    )


def _start(current: object, plan: RunPlan, config: Settings) -> bulk.StartedRun:
    with current.session() as session:  # type: ignore[attr-defined]
        return bulk.start_bulk_run(
            session,
            org_id=plan.org_id,
            user_type_id=plan.user_type_id,
            inviter_id=plan.inviter_id,
            crm_ids=plan.crm_ids,
            chunk_size=config.bulk_chunk_size,
        )


def _print_summary(
    summary: dict, per_run: list[dict], plans: list[RunPlan], config: Settings
) -> None:
    runs = Table("run", "invite", "requested", "sent", "failed", title="Bulk runs")
    for report, plan in zip(per_run, plans, strict=True):
        runs.add_row(
            str(report["id"]),
            plan.label,
            str(report["requested"]),
            str(report["sent"]),
            str(report["failed"]),
        )
    console.print(runs)
    failed = summary["failed"]
    console.print(reason_table(failed, title="Failed invitations, by reason"))
    outbox = config.outbox_dir
    emails = len(list(outbox.glob("*.eml")))
    texts = len(list(config.sms_outbox_dir.glob("*.json")))
    console.print(
        f"[bold green]{summary['sent']} invitations sent[/], "
        f"[bold red]{sum(failed.values())} failed[/] across {len(failed)} reasons."
    )
    console.print(f"{emails} emails written to [bold]{outbox.resolve()}[/] (one .eml each),")
    console.print(f"{texts} SMS to [bold]{config.sms_outbox_dir.resolve()}[/] (one .json each).")
    console.print("See one run's failed invitees: portalflow bulk-runs show ID (same database:")
    console.print(
        f"  PORTALFLOW_DATABASE_URL=sqlite:///{outbox.parent.resolve() / 'portalflow.db'})"
    )
    link = _one_accept_link(outbox)
    if link is not None:
        console.print("Accept one invitation as its recipient would: serve the demo database,")
        console.print(
            f"  PORTALFLOW_VAR_DIR={config.var_dir.resolve()} portalflow serve", soft_wrap=True
        )
        console.print("then open this link in a browser:")
        # Never wrapped: a link broken over two lines cannot be copied.
        console.print(f"  {link}", soft_wrap=True, markup=False, highlight=False)


def _one_accept_link(outbox: Path) -> str | None:
    """The accept link of one email in the outbox (the token is nowhere else: only hashed)."""
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        body = message.get_body(("plain",))  # type: ignore[attr-defined]
        match = ACCEPT_LINK.search(body.get_content()) if body is not None else None
        if match:
            return match.group(0)
    return None
