"""Setting up a tenant: ``portalflow orgs`` and ``portalflow crm-users`` (``user_types.py``:
``portalflow user-types``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from portalflow.models import (
    CrmUser,
    DataCentre,
    Edition,
    RecordAccess,
)
from portalflow.pipelines.delivery import credits
from portalflow.pipelines.tenancy import branding, orgs

from .common import OrgId, console, new_app, open_session, print_json, print_table

orgs_app = new_app("Create, list and update orgs (tenants) and their portals.")
crm_users_app = new_app("Add and list the CRM users who invite portal users.")

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@orgs_app.command("create")
def create_org(
    name: Annotated[str, typer.Option(help="The company name.")],
    domain: Annotated[str, typer.Option(help="The company's own email domain, e.g. zylker.com.")],
    country: Annotated[
        str, typer.Option(help="Country of registration: ISO 3166-1 two-letter code, e.g. IN.")
    ],
    edition: Annotated[Edition, typer.Option(help="The CRM edition.")] = Edition.FREE,
    data_centre: Annotated[
        DataCentre | None,
        typer.Option(
            help="The data centre the org lives in (default: from the country: IN -> in, "
            "EU/EEA, GB, CH -> eu, AU, NZ -> au, JP -> jp, CN -> cn, CA -> ca, else us)."
        ),
    ] = None,
    portal_name: Annotated[
        str | None, typer.Option(help="The portal's name (default: the org name).")
    ] = None,
    portal_slug: Annotated[
        str | None, typer.Option(help="The portal's URL slug (default: from the portal name).")
    ] = None,
    from_email: Annotated[
        str | None, typer.Option(help="Default From address of invitation emails.")
    ] = None,
    from_name: Annotated[str | None, typer.Option(help="Default From display name.")] = None,
    reply_to: Annotated[str | None, typer.Option(help="Default Reply-To address.")] = None,
    json_output: Json = False,
) -> None:
    """Create an org with its portal and its Client Portal user type.

    Prints the org id, its data centre, the portal slug and the Client Portal user type id.

    Example:

        portalflow orgs create --name Zylker --domain zylker.com --country IN \\
            --edition enterprise --from-email portal@zylker-support.com
    """
    with open_session() as session:
        org = orgs.create_org(
            session,
            name=name,
            company_domain=domain,
            country=country,
            edition=edition,
            data_centre=data_centre,
            portal_name=portal_name,
            portal_slug=portal_slug,
            from_email=from_email,
            from_name=from_name,
            reply_to=reply_to,
        )
        summary = orgs.org_summaries(session, [org])[0]
    if json_output:
        print_json(summary)
    else:
        _print_orgs([summary], title="Org created")


@orgs_app.command("list")
def list_orgs(json_output: Json = False) -> None:
    """List every org with its portal and Client Portal user type.

    Example:

        portalflow orgs list --json
    """
    with open_session() as session:
        summaries = orgs.org_summaries(session, orgs.list_orgs(session))
    if json_output:
        print_json(summaries)
    elif not summaries:
        console.print("no orgs yet; create one with `portalflow orgs create`")
    else:
        _print_orgs(summaries, title="Orgs")


@orgs_app.command("update")
def update_org(
    org: OrgId,
    name: Annotated[str | None, typer.Option(help="A new company name.")] = None,
    portal_name: Annotated[str | None, typer.Option(help="A new portal name.")] = None,
    portal_slug: Annotated[
        str | None,
        typer.Option(
            help="A new URL slug, unique among all portals (links already sent carry the old one)."
        ),
    ] = None,
    edition: Annotated[
        Edition | None,
        typer.Option(help="A new edition; a trial moved to a paid edition keeps its portal."),
    ] = None,
    data_centre: Annotated[DataCentre | None, typer.Option(help="A new data centre.")] = None,
    from_email: Annotated[
        str | None, typer.Option(help='Default From address of invitation emails ("" clears).')
    ] = None,
    from_name: Annotated[
        str | None, typer.Option(help='Default From display name ("" clears).')
    ] = None,
    reply_to: Annotated[
        str | None, typer.Option(help='Default Reply-To address ("" clears).')
    ] = None,
    json_output: Json = False,
) -> None:
    """Rename an org or its portal, change its edition, data centre or sender addresses.

    Only the options given change. Renaming sends nobody anything; an org never goes back
    to a trial.

    Example:

        portalflow orgs update --org 1 --name "Zylker Corp" --portal-slug zylker-corp \\
            --edition enterprise --data-centre in --reply-to help@zylker-mail.com
    """
    with open_session() as session:
        updated = orgs.update_org(
            session,
            org,
            name=name,
            portal_name=portal_name,
            portal_slug=portal_slug,
            edition=edition,
            data_centre=data_centre,
            from_email=from_email,
            from_name=from_name,
            reply_to=reply_to,
        )
        summary = orgs.org_summaries(session, [updated])[0]
    if json_output:
        print_json(summary)
    else:
        _print_orgs([summary], title="Org updated")


@crm_users_app.command("add")
def add_crm_user(
    org: OrgId,
    name: Annotated[str, typer.Option(help="The user's full name.")],
    email: Annotated[str, typer.Option(help="The user's email address.")],
    modules: Annotated[str, typer.Option(help="Comma-separated modules the user may invite from.")],
    record_access: Annotated[
        RecordAccess,
        typer.Option(help="Invite from all records of those modules, or only owned ones."),
    ] = RecordAccess.ALL,
    json_output: Json = False,
) -> None:
    """Add a CRM user who may invite records of the given modules.

    Example:

        portalflow crm-users add --org 1 --name "Russell Brown" \\
            --email russell@zylker.com --modules Contacts,Leads
    """
    with open_session() as session:
        user = orgs.add_crm_user(
            session,
            org,
            name=name,
            email=email,
            modules=modules.split(","),
            record_access=record_access,
        )
        summary = _crm_user_summary(user)
    if json_output:
        print_json(summary)
    else:
        _print_crm_users([summary], title="CRM user added")


@crm_users_app.command("list")
def list_crm_users(org: OrgId, json_output: Json = False) -> None:
    """List an org's CRM users and what they may invite.

    Example:

        portalflow crm-users list --org 1 --json
    """
    with open_session() as session:
        summaries = [_crm_user_summary(user) for user in orgs.list_crm_users(session, org)]
    if json_output:
        print_json(summaries)
    else:
        _print_crm_users(summaries, title=f"CRM users of org {org}")


def _crm_user_summary(user: CrmUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "org_id": user.org_id,
        "name": user.name,
        "email": user.email,
        "modules": list(user.module_permissions),
        "record_access": user.record_access.value,
        "language": user.language,
    }


def _print_orgs(summaries: list[dict[str, Any]], *, title: str) -> None:
    print_table(
        title,
        (
            "id",
            "name",
            "domain",
            "country",
            "data centre",
            "edition",
            "portal",
            "portal slug",
            "from",
            "Client Portal type id",
        ),
        [
            (
                s["id"],
                s["name"],
                s["company_domain"],
                s["country"],
                s["data_centre"],
                s["edition"],
                s["portal_name"],
                s["portal_slug"],
                s["from_email"],
                s["client_portal_user_type_id"],
            )
            for s in summaries
        ],
    )


def _print_crm_users(summaries: list[dict[str, Any]], *, title: str) -> None:
    print_table(
        title,
        ("id", "name", "email", "modules", "record access"),
        [
            (s["id"], s["name"], s["email"], ", ".join(s["modules"]), s["record_access"])
            for s in summaries
        ],
    )


@orgs_app.command("sms")
def configure_sms(
    org: OrgId,
    add_credits: Annotated[
        int | None, typer.Option(min=1, help="Credits to add (one SMS segment each).")
    ] = None,
    sender_id: Annotated[
        str | None, typer.Option(help="The DLT-registered sender id (header), e.g. ZYLKER.")
    ] = None,
    whitespace_tolerant: Annotated[
        bool | None,
        typer.Option(
            "--whitespace-tolerant/--exact",
            help="Compare an SMS with its DLT template ignoring whitespace, or exactly.",
        ),
    ] = None,
    json_output: Json = False,
) -> None:
    """Set up an org's Notification SMS integration: credits, sender id, DLT matching.

    Example:

        portalflow orgs sms --org 1 --add-credits 5000 --sender-id ZYLKER
    """
    with open_session() as session:
        if add_credits is not None:
            credits.add(session, org, add_credits)
        updated = orgs.configure_sms(
            session, org, sender_id=sender_id, whitespace_tolerant=whitespace_tolerant
        )
        summary = {
            "org_id": updated.id,
            "sms_credits": updated.sms_credits,
            "sms_sender_id": updated.sms_sender_id,
            "sms_whitespace_tolerant": updated.sms_whitespace_tolerant,
        }
    if json_output:
        print_json(summary)
    else:
        print_table("SMS settings", tuple(summary), [tuple(summary.values())])


@orgs_app.command("branding")
def set_branding(
    org: OrgId,
    logo_url: Annotated[
        str | None,
        typer.Option(help='An https:// image shown above the invitation emails ("" clears).'),
    ] = None,
    footer: Annotated[
        str | None,
        typer.Option(
            help="Text below the invitation emails: the org's address, a support contact "
            '(\\n for a new line; "" clears).'
        ),
    ] = None,
    json_output: Json = False,
) -> None:
    """Brand an org's invitation emails: a logo above them and a footer below them.

    Every invitation email also carries the one-click opt-out link ("Stop invitations
    from <org>"), whatever the branding.

    Example:

        portalflow orgs branding --org 1 --logo-url https://zylker.com/logo.png
            --footer "Zylker Ltd, 1 Main St, Springfield\\nsupport@zylker.com"
    """
    with open_session() as session:
        updated = branding.set_email_branding(session, org, logo_url=logo_url, footer=footer)
        summary = {
            "org_id": updated.id,
            "logo_url": updated.logo_url,
            "email_footer": updated.email_footer,
        }
    if json_output:
        print_json(summary)
    else:
        print_table("Email branding", tuple(summary), [tuple(summary.values())])
