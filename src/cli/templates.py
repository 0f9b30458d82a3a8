"""``portalflow templates``: show, customise and reset invitation email templates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portalflow.models import EmailKind
from portalflow.pipelines.content import email_templates

from .common import JsonFlag, console, new_app, open_session, print_json

app = new_app("Show, customise and reset a user type's invitation email templates.")

OrgId = Annotated[int, typer.Option("--org", help="Org id.")]
UserTypeId = Annotated[int, typer.Option("--user-type", help="User type id.")]
Kind = Annotated[EmailKind, typer.Option(help="Which email.")]
Language = Annotated[str, typer.Option(help="Language: en fr de es ja hi.")]


@app.command("show")
def show(
    org: OrgId,
    user_type: UserTypeId,
    kind: Kind = EmailKind.ACCEPT_INVITATION,
    language: Language = "en",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the template in effect (the org's own, or the shipped default).

    Example: `portalflow templates show --org 1 --user-type 1 --kind confirm_email --language ja`
    """
    with open_session() as session:
        template = email_templates.show_template(session, org, user_type, kind, language)
    if as_json:
        print_json(template)
        return
    origin = "custom" if template["is_custom"] else "shipped default"
    console.print(f"[bold]{kind.value}[/] / {template['language']} ({origin})")
    console.print(f"[bold]Subject:[/] {template['subject']}", markup=True, highlight=False)
    console.rule("HTML body")
    console.print(template["html_body"], markup=False, highlight=False)
    if template["text_body"]:
        console.rule("Text body")
        console.print(template["text_body"], markup=False, highlight=False)


@app.command("save")
def save(
    org: OrgId,
    user_type: UserTypeId,
    subject: Annotated[str, typer.Option(help="Subject; merge fields allowed.")],
    html_file: Annotated[
        Path, typer.Option(help="HTML body (UTF-8).", exists=True, dir_okay=False)
    ],
    text_file: Annotated[
        Path | None,
        typer.Option(help="Plain-text body; derived from the HTML when left out.", dir_okay=False),
    ] = None,
    kind: Kind = EmailKind.ACCEPT_INVITATION,
    language: Language = "en",
    as_json: JsonFlag = False,
) -> None:
    """Save a custom subject and body for one user type, email kind and language.

    Merge fields: `{{ record.first_name }}`, `{{ portal.name }}`, `{{ org.name }}`,
    `{{ inviter.name }}`, `{{ expires_at }}`, and the link: `{{ invite_url }}` (accept) or
    `{{ confirm_url }}` (confirm). A template without its link, with a syntax error, or
    reaching for anything outside the sandbox is refused and nothing is saved.

    Example: `portalflow templates save --org 1 --user-type 1 --subject "Hi {{ record.first_name }}" --html-file invite.html`
    """  # noqa: E501
    html_body = html_file.read_text(encoding="utf-8")
    text_body = text_file.read_text(encoding="utf-8") if text_file else None
    with open_session() as session:
        email_templates.save_custom_template(
            session,
            org,
            user_type,
            kind,
            language,
            subject=subject,
            html_body=html_body,
            text_body=text_body,
        )
    if as_json:
        print_json(_identity(org, user_type, kind, language) | {"custom": True})
        return
    console.print(f"Saved the {kind.value} template ({language}) for user type {user_type}.")


@app.command("reset")
def reset(
    org: OrgId,
    user_type: UserTypeId,
    kind: Kind = EmailKind.ACCEPT_INVITATION,
    language: Language = "en",
    as_json: JsonFlag = False,
) -> None:
    """Drop the custom template so the shipped default (with its portal link) is used again.

    Example: `portalflow templates reset --org 1 --user-type 1 --language fr`
    """
    with open_session() as session:
        existed = email_templates.reset_template(session, org, user_type, kind, language)
    if as_json:
        print_json(_identity(org, user_type, kind, language) | {"custom": False, "reset": existed})
        return
    if existed:
        console.print(f"Reset the {kind.value} template ({language}) to the default.")
    else:
        console.print(f"The {kind.value} template ({language}) was already the default.")


def _identity(org: int, user_type: int, kind: EmailKind, language: str) -> dict[str, object]:
    return {"org_id": org, "user_type_id": user_type, "kind": kind.value, "language": language}
