"""Cost of one invitation email's hot path: render the template, build the MIME message.

Compares our builder with the two standard-library ways of building the same two-part
message. Prints one line per figure, then a one-line JSON summary (microseconds).

    .venv/bin/python bench/message_build.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import timeit
from collections.abc import Callable
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP as SMTP_POLICY
from email.policy import compat32

from portalflow.models import EmailKind
from portalflow.pipelines.content.message import build_message
from portalflow.pipelines.content.rendering import RenderedEmail, build_context, default_template

RECORD = {"first_name": "Sage", "last_name": "Weiser", "email": "sage@example.org"}


def rendered(language: str) -> RenderedEmail:
    return default_template(EmailKind.ACCEPT_INVITATION, language).render(context())


def context() -> dict:
    return build_context(
        record=RECORD,
        org_name="Zylker Retail",
        portal_name="Zylker Retail",
        portal_url="https://portal.example.com/zylker",
        user_type_name="Client Portal",
        inviter_name="Russell Brown",
        link="https://portal.example.com/zylker/accept?token=" + "x" * 43,
        kind=EmailKind.ACCEPT_INVITATION,
        expires_at=None,
    )


def ours(email: RenderedEmail) -> bytes:
    return build_message(
        rendered=email,
        from_address="portal@zylker-support.com",
        from_name="Zylker Customer Portal",
        reply_to="help@zylker-support.com",
        recipient="sage@example.org",
        recipient_name="Sage Weiser",
        headers={"X-Portalflow-Invitation": "1"},
    ).raw


def mime_classes(email: RenderedEmail) -> bytes:
    message = MIMEMultipart("alternative")
    message["From"] = "Zylker Customer Portal <portal@zylker-support.com>"
    message["To"] = "Sage Weiser <sage@example.org>"
    message["Subject"] = email.subject
    message.attach(MIMEText(email.text, "plain", "utf-8"))
    message.attach(MIMEText(email.html, "html", "utf-8"))
    return message.as_bytes(policy=compat32.clone(linesep="\r\n"))


def email_message(email: RenderedEmail) -> bytes:
    message = EmailMessage()
    message["From"] = "Zylker Customer Portal <portal@zylker-support.com>"
    message["To"] = "Sage Weiser <sage@example.org>"
    message["Subject"] = email.subject
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message.as_bytes(policy=SMTP_POLICY)


def best_us(fn: Callable[[], object], number: int) -> float:
    """Best of five repeats, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, for a smoke run")
    number = 50 if parser.parse_args().quick else 2000
    template = default_template(EmailKind.ACCEPT_INVITATION, "en")
    summary: dict[str, object] = {"python": platform.python_version(), "iterations": number}
    summary["render_us"] = round(best_us(lambda: template.render(context()), number), 1)
    for language in ("en", "ja"):
        email = rendered(language)
        for name, build in (
            ("ours", ours),
            ("mime", mime_classes),
            ("emailmessage", email_message),
        ):
            key = f"build_{name}_{language}_us"
            summary[key] = round(best_us(lambda b=build, e=email: b(e), number), 1)
            print(f"{key:32} {summary[key]:8.1f} us")
    print(f"{'render_us':32} {summary['render_us']:8.1f} us")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
