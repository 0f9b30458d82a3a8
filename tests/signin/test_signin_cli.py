"""``portalflow sessions``: the admin's view of a portal user's sessions, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from portalflow.models import SignInRefusal
from portalflow.pipelines.signin import sessions

from ..cli_runner import flat, run
from ..invitations.test_acceptance import PASSWORD
from .test_signin import confirmed_email_user, guard, sign_in


@pytest.fixture
def env(session: Session, cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI on the test's own database."""
    url = session.get_bind().url.render_as_string(hide_password=False)
    monkeypatch.setenv("PORTALFLOW_DATABASE_URL", url)


@pytest.mark.usefixtures("env")
def test_list_and_end_a_users_sessions(session: Session, tmp_path: Path) -> None:
    world, user = confirmed_email_user(session, tmp_path)
    the_guard = guard()
    first, second = (sign_in(session, the_guard, user.email, PASSWORD).opened for _ in range(2))
    assert first is not None and second is not None
    org, user_id = str(world["org"].id), str(user.id)  # read now: no lazy load past a commit

    code, output = run("sessions", "list", "--org", org, "--user", user_id, "--json")
    assert code == 0, output
    listed = json.loads(output)
    assert [row["id"] for row in listed] == [second.session_id, first.session_id]
    assert {row["state"] for row in listed} == {"live"}
    assert first.token not in output and sessions.hash_session_token(first.token) not in output

    code, output = run(
        "sessions", "end", "--org", org, "--user", user_id, "--session", str(first.session_id)
    )
    assert (code, flat(output)) == (
        0,
        f"Ended 1 session(s) of portal user {user_id}: {first.session_id}.",
    )
    session.expire_all()
    assert sessions.check_session(session, first.token).refusal == SignInRefusal.SESSION_ENDED
    assert sessions.check_session(session, second.token).refusal is None
    session.commit()  # end the read: SQLite's BEGIN IMMEDIATE would block the CLI

    code, output = run("sessions", "end", "--org", org, "--user", user_id)
    assert code == 0 and f"{second.session_id}." in output, output
    code, output = run("sessions", "list", "--org", org, "--user", user_id, "--all")
    assert code == 0 and flat(output).count("ended_by_admin") == 2
    code, output = run("sessions", "end", "--org", org, "--user", user_id)
    assert code == 0 and "no live session" in output


@pytest.mark.usefixtures("env")
def test_unknown_users_and_sessions_are_named(session: Session, tmp_path: Path) -> None:
    world, user = confirmed_email_user(session, tmp_path)
    org = str(world["org"].id)
    code, output = run("sessions", "list", "--org", org, "--user", "999")
    assert code == 2 and "portal user 999 does not exist in org" in flat(output)
    code, output = run("sessions", "end", "--org", org, "--user", str(user.id), "--session", "5")
    assert code == 2 and f"session 5 is not a session of portal user {user.id}" in flat(output)
