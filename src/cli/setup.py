"""Setting up a tenant: ``portalflow orgs``, ``portalflow user-types``, ``portalflow crm-users``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import (
    CrmUser,
    DataCentre,
    Edition,
    InvitationPreference,
    PortalUserType,
    RecordAccess,
)
from portalflow.pipelines.delivery import credits
from portalflow.pipelines.tenancy import branding, orgs

from .common import console, new_app, open_session, print_json

orgs_app = new_app("Create, list and update orgs (tenants) and their portals.")
user_types_app = new_app("Add and list an org's portal user types (Customers, Vendors, ...).")
crm_users_app = new_app("Add and list the CRM users who invite portal users.")

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
OrgId = Annotated[int, typer.Option("--org", help="The org's id (see `portalflow orgs list`).")]


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


@user_types_app.command("add")
def add_user_type(
    org: OrgId,
    name: Annotated[str, typer.Option(help="The user type's label, e.g. Vendors.")],
    module: Annotated[str, typer.Option(help="The CRM module its records come from.")],
    preference: Annotated[
        InvitationPreference,
        typer.Option(help="Invite by email, or by phone (orgs registered in India only)."),
    ] = InvitationPreference.EMAIL,
    field: Annotated[
        str | None,
        typer.Option(help="The record field holding the address (default: email or phone)."),
    ] = None,
    licences: Annotated[
        int | None,
        typer.Option(min=0, help="Portal user licences to buy for it, in force from today."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Add a portal user type to an org (at most five per org; none on a trial).

    A type other than the Client Portal invites only as many users as it has licences.

    Example:

        portalflow user-types add --org 1 --name Vendors --module Vendors
    """
    with open_session() as session:
        user_type = orgs.add_user_type(
            session,
            org,
            name=name,
            module=module,
            invitation_preference=preference,
            invitation_field=field,
            licences=licences,
        )
        summary = _user_type_summary(user_type)
    if json_output:
        print_json(summary)
    else:
        _print_user_types([summary], title="User type added")


@user_types_app.command("list")
def list_user_types(org: OrgId, json_output: Json = False) -> None:
    """List an org's portal user types.

    Example:

        portalflow user-types list --org 1
    """
    with open_session() as session:
        summaries = [_user_type_summary(t) for t in orgs.list_user_types(session, org)]
    if json_output:
        print_json(summaries)
    else:
        _print_user_types(summaries, title=f"User types of org {org}")


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


def _user_type_summary(user_type: PortalUserType) -> dict[str, Any]:
    return {
        "id": user_type.id,
        "org_id": user_type.org_id,
        "name": user_type.name,
        "module": user_type.module,
        "invitation_preference": user_type.invitation_preference.value,
        "invitation_field": user_type.invitation_field,
        "is_client_portal": user_type.is_client_portal,
        "enabled": user_type.enabled,
    }


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
    _print_table(
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


def _print_user_types(summaries: list[dict[str, Any]], *, title: str) -> None:
    _print_table(
        title,
        ("id", "name", "module", "preference", "field", "Client Portal"),
        [
            (
                s["id"],
                s["name"],
                s["module"],
                s["invitation_preference"],
                s["invitation_field"],
                "yes" if s["is_client_portal"] else "",
            )
            for s in summaries
        ],
    )


def _print_crm_users(summaries: list[dict[str, Any]], *, title: str) -> None:
    _print_table(
        title,
        ("id", "name", "email", "modules", "record access"),
        [
            (s["id"], s["name"], s["email"], ", ".join(s["modules"]), s["record_access"])
            for s in summaries
        ],
    )


def _print_table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    table = Table(title=escape(title))
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Names come from users: never let a '[' in them read as Rich markup.
        table.add_row(*(escape("-" if value is None else str(value)) for value in row))
    console.print(table)


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
        _print_table("SMS settings", tuple(summary), [tuple(summary.values())])


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
        _print_table("Email branding", tuple(summary), [tuple(summary.values())])


@user_types_app.command("set-preference")
def set_preference(
    org: OrgId,
    user_type: Annotated[int, typer.Option("--user-type", help="The user type's id.")],
    preference: Annotated[InvitationPreference, typer.Option(help="Invite by email or phone.")],
    field: Annotated[
        str | None,
        typer.Option(help="The record field holding the address (default: email or phone)."),
    ] = None,
    json_output: Json = False,
) -> None:
    """Change how a user type invites; refused once it has users.

    Phone is for orgs registered in India; SMS invitations need approved DLT templates
    (see `portalflow sms-templates`).

    Example:

        portalflow user-types set-preference --org 1 --user-type 2 --preference phone --field mobile
    """
    with open_session() as session:
        updated = orgs.set_invitation_preference(
            session, org, user_type, preference=preference, field=field
        )
        summary = _user_type_summary(updated)
    if json_output:
        print_json(summary)
    else:
        _print_user_types([summary], title="User type updated")


@user_types_app.command("delete")
def delete_user_type(
    org: OrgId,
    user_type: Annotated[int, typer.Option("--user-type", help="The user type to delete.")],
    transfer_to: Annotated[
        int,
        typer.Option(
            "--to-user-type",
            "--transfer-to",
            help="The user type (same invitation preference) its users move to (or --transfer-to).",
        ),
    ],
    batch_size: Annotated[int, typer.Option(min=1, help="Users moved per committed batch.")] = 500,
    json_output: Json = False,
) -> None:
    """Transfer and delete: move every user of a type to another type, then delete it.

    Users move in committed batches; if the command is interrupted, run it again to finish.
    The Client Portal type cannot be deleted.

    Example:

        portalflow user-types delete --org 1 --user-type 3 --to-user-type 2
    """
    from .transfers import run_transfer_and_delete

    summary = run_transfer_and_delete(
        org, user_type, transfer_to, batch_size=batch_size, progress=not json_output
    )
    if json_output:
        print_json(summary)


@user_types_app.command("set-conversion-default")
def set_conversion_default(
    org: OrgId,
    user_type: Annotated[int, typer.Option("--user-type", help="A Contacts user type's id.")],
    json_output: Json = False,
) -> None:
    """Make a Contacts user type the one converted leads go to when several could.

    Example:

        portalflow user-types set-conversion-default --org 1 --user-type 4
    """
    from portalflow.pipelines.users import lead_conversion

    with open_session() as session:
        updated = lead_conversion.set_conversion_default(session, org, user_type)
        summary = _user_type_summary(updated) | {"conversion_default": True}
    if json_output:
        print_json(summary)
    else:
        _print_user_types([summary], title="Conversion default set")
