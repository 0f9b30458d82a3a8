"""Portal user types: ``portalflow user-types`` (add, list, set-preference, delete,
set-conversion-default)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from portalflow.models import InvitationPreference, PortalUserType
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import lead_conversion

from .common import JsonFlag, OrgId, new_app, open_session, print_json, print_table
from .transfers import run_transfer_and_delete

user_types_app = new_app("Add and list an org's portal user types (Customers, Vendors, ...).")


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
    json_output: JsonFlag = False,
) -> None:
    """Add a portal user type to an org (at most five per org; none on a trial).

    A type other than the Client Portal invites only as many users as it has licences.

    Example:

        portalflow user-types add --org 1 --name Vendors --module Vendors
    """
    with open_session() as session:
        options = {"name": name, "module": module, "invitation_field": field}
        if licences is None:
            user_type = orgs.add_user_type(
                session, org, invitation_preference=preference, **options
            )
        else:
            user_type = purchases.add_user_type_with_licences(
                session, org, invitation_preference=preference, licences=licences, **options
            )
        summary = _user_type_summary(user_type)
    if json_output:
        print_json(summary)
    else:
        _print_user_types([summary], title="User type added")


@user_types_app.command("list")
def list_user_types(org: OrgId, json_output: JsonFlag = False) -> None:
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


@user_types_app.command("set-preference")
def set_preference(
    org: OrgId,
    user_type: Annotated[int, typer.Option("--user-type", help="The user type's id.")],
    preference: Annotated[InvitationPreference, typer.Option(help="Invite by email or phone.")],
    field: Annotated[
        str | None,
        typer.Option(help="The record field holding the address (default: email or phone)."),
    ] = None,
    json_output: JsonFlag = False,
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
    json_output: JsonFlag = False,
) -> None:
    """Transfer and delete: move every user of a type to another type, then delete it.

    Users move in committed batches; if the command is interrupted, run it again to finish.
    The Client Portal type cannot be deleted.

    Example:

        portalflow user-types delete --org 1 --user-type 3 --to-user-type 2
    """
    summary = run_transfer_and_delete(
        org, user_type, transfer_to, batch_size=batch_size, progress=not json_output
    )
    if json_output:
        print_json(summary)


@user_types_app.command("set-conversion-default")
def set_conversion_default(
    org: OrgId,
    user_type: Annotated[int, typer.Option("--user-type", help="A Contacts user type's id.")],
    json_output: JsonFlag = False,
) -> None:
    """Make a Contacts user type the one converted leads go to when several could.

    Example:

        portalflow user-types set-conversion-default --org 1 --user-type 4
    """
    with open_session() as session:
        updated = lead_conversion.set_conversion_default(session, org, user_type)
        summary = _user_type_summary(updated) | {"conversion_default": True}
    if json_output:
        print_json(summary)
    else:
        _print_user_types([summary], title="Conversion default set")


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


def _print_user_types(summaries: list[dict[str, Any]], *, title: str) -> None:
    print_table(
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
