"""``portalflow sms-templates``: SMS template text, the DLT registry, mappings, verification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.models import SmsTemplateKind, VerificationStatus
from portalflow.pipelines.content import dlt, sms_template_checks, sms_templates
from portalflow.pipelines.content.sms_templates import KindOverview, TemplateVersion

from .common import (
    EXIT_ROWS_FAILED,
    JsonFlag,
    console,
    err_console,
    fail,
    new_app,
    open_session,
    print_import_summary,
    print_json,
    settings,
)

app = new_app(
    "The org's three SMS templates (India, DLT): edit the text, import the DLT registry, map "
    "each template to its DLT template, approve the mapping, and check a trial render.\n\n"
    "Flow: `edit` -> register the text on the DLT portal -> `import-dlt` -> `map` -> `approve`."
)

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
OrgId = Annotated[int, typer.Option("--org", help="The org's id (see `portalflow orgs list`).")]
Kind = Annotated[
    SmsTemplateKind,
    typer.Option("--kind", help="Which template: invitation, verification or forgot_password."),
]


@app.command("list")
def list_templates(org: OrgId, json_output: Json = False) -> None:
    """Show each kind's template in use, its edit awaiting approval, and whether SMS is ready.

    SMS invitations can be sent only when all three kinds have a template in use (its DLT
    mapping approved).

    Example:

        portalflow sms-templates list --org 1
    """
    with open_session() as session:
        kinds = sms_templates.overview(session, org)
        ready = sms_templates.sms_ready(session, org)
    if json_output:
        print_json({"ready": ready, "kinds": [_overview_json(kind) for kind in kinds]})
        return
    table = Table(title=f"SMS templates of org {org}")
    table.add_column("kind")
    table.add_column("in use", overflow="fold")
    table.add_column("awaiting approval", overflow="fold")
    for kind in kinds:
        table.add_row(kind.kind.value, _in_use_cell(kind.in_use), _pending_cell(kind.pending))
    console.print(table)
    missing = [kind.kind.value for kind in kinds if kind.in_use is None]
    if ready:
        console.print("[green]SMS ready[/]: all three templates are approved.")
    else:
        console.print(
            f"[yellow]SMS not ready[/]: no approved template for {', '.join(missing)}; "
            "phone-preference user types cannot invite yet."
        )


@app.command("edit")
def edit(
    org: OrgId,
    kind: Kind,
    text: Annotated[str | None, typer.Option("--text", help="The template text.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="Read the text from a UTF-8 file.", exists=True, dir_okay=False
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Save a kind's text. An approved template stays in use until this edit is approved.

    Merge fields are `{{ name }}` or `{{ name.attr }}` only: `{{ record.<field> }}`,
    `{{ portal.name }}`, `{{ org.name }}`, and per kind `{{ invite_url }}` (invitation),
    `{{ code }}` (verification), `{{ reset_url }}` and `{{ expiry_hours }}`
    (forgot_password). The text must end with a dash, a space and the org name (`- Zylker`), and any link must be on the
    org's data-centre short-link domain (e.g. in.zcrm.to) without a `?`.

    Example:

        portalflow sms-templates edit --org 1 --kind verification \\
            --text "{{ code }} is your verification code for the {{ portal.name }} portal. Do not share it. - Zylker"
    """  # noqa: E501
    if (text is None) == (file is None):
        fail("give the template text with exactly one of --text or --file")
    body = text if text is not None else file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    config = settings()
    with open_session(config) as session:
        template = sms_templates.edit_template(session, org, kind, body, config=config)
        state = sms_templates.overview(session, org)
    kind_state = next(item for item in state if item.kind == kind)
    unchanged = kind_state.in_use is not None and kind_state.in_use.sms_template_id == template.id
    if as_json:
        print_json(
            {
                "org_id": org,
                "kind": kind.value,
                "sms_template_id": template.id,
                "unchanged": unchanged,
                "in_use": kind_state.in_use is not None,
            }
        )
        return
    if unchanged:
        console.print(f"The {kind.value} template is unchanged; it is in use.")
    elif kind_state.in_use is not None:
        console.print(
            f"Saved the {kind.value} edit; the approved template stays in use until this one "
            "is mapped and approved."
        )
    else:
        console.print(f"Saved the {kind.value} template; map it to its DLT template next.")


@app.command("import-dlt")
def import_dlt(
    file: Annotated[
        Path, typer.Argument(help="The DLT portal's export: .csv, .tsv or .xlsx.", dir_okay=False)
    ],
    org: OrgId,
    json_output: Json = False,
) -> None:
    """Load the org's DLT template registry from an operator portal's export.

    Recognised columns (any case, spaces or underscores): template id (`TEMPLATE_ID`,
    `Template ID`, `Content Template ID`), content (`TEMPLATE_CONTENT`, `Template Message`,
    `Message Content`, `Content`), name, header / `Sender ID`, category / `Content Type`,
    `Status`, `Entity ID` / `PE ID`, `VARIABLE_COUNT`. Other columns are ignored. A bad row
    (missing or mangled id such as `1.20717E+18`, unknown `{#tag#}`) is reported with its
    line number while the good rows load.

    Exit codes: **0** every row loaded; **1** some rows failed and the good ones were saved;
    **2** nothing was saved (unknown org, unreadable file, no template id/content columns).

    Example:

        portalflow sms-templates import-dlt jio-approved.csv --org 1
    """
    with open_session() as session:
        report = dlt.import_dlt_file(session, org, file)
    if json_output:
        print_json(
            {
                "created": report.created,
                "updated": report.updated,
                "rejected_rows_imported": report.rejected_rows_imported,
                "errors": [{"line": e.line, "message": e.message} for e in report.errors],
            }
        )
    else:
        _print_import(file, org, report)
    if report.errors:
        raise typer.Exit(EXIT_ROWS_FAILED)


@app.command("map")
def map_command(
    org: OrgId,
    kind: Kind,
    dlt_id: Annotated[
        str, typer.Option("--dlt-id", help="The DLT template id (12-19 digits) from the import.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Map the kind's newest text (its edit, else the current one) to a DLT template.

    The DLT template must be approved on the DLT portal, and the text must match it: the
    same literal text, with a merge field wherever the DLT template has a `{#var#}`. The
    mapping then waits for verification (`approve`).

    Example:

        portalflow sms-templates map --org 1 --kind invitation --dlt-id 1207170000000000101
    """
    with open_session() as session:
        mapping = sms_templates.map_template(session, org, kind, dlt_id)
        state = mapping.verification.value
    if as_json:
        print_json({"org_id": org, "kind": kind.value, "dlt_id": dlt_id, "verification": state})
        return
    console.print(f"Mapped the {kind.value} template to DLT template {dlt_id} ({state}).")


@app.command("approve")
def approve(
    org: OrgId,
    kind: Kind,
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject the mapping instead of approving it.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Approve (or reject) the kind's mapping awaiting verification.

    Approving puts the template in use; an older approved version of the kind is deleted.

    Example:

        portalflow sms-templates approve --org 1 --kind invitation
    """
    status = VerificationStatus.REJECTED if reject else VerificationStatus.APPROVED
    with open_session() as session:
        sms_templates.set_verification(session, org, kind, status)
        ready = sms_templates.sms_ready(session, org)
    if as_json:
        print_json(
            {"org_id": org, "kind": kind.value, "verification": status.value, "sms_ready": ready}
        )
        return
    console.print(f"The {kind.value} mapping is {status.value}.")
    if ready:
        console.print("[green]SMS ready[/]: all three templates are approved.")


@app.command("check")
def check(
    org: OrgId,
    kind: Kind,
    values: Annotated[
        str | None,
        typer.Option(
            "--values",
            help='JSON merge values over the samples, e.g. \'{"record": {"first_name": "Ann"}}\'.',
        ),
    ] = None,
    json_output: Json = False,
) -> None:
    """Trial-render the kind's template and check it against its DLT template.

    Uses the edit awaiting approval when it is mapped, else the template in use. Prints the
    text, its encoding (gsm7 / ucs2) and how many SMS parts it takes, or why the operator
    would refuse it. Exit code **1** on a mismatch.

    Example:

        portalflow sms-templates check --org 1 --kind invitation \\
            --values '{"record": {"first_name": "Sage"}, "invite_url": "https://in.zcrm.to/Ab3dE6gH9k"}'
    """
    given = _parse_values(values)
    config = settings()
    with open_session(config) as session:
        result = sms_template_checks.check_template(session, org, kind, config=config, values=given)
    if json_output:
        checked = result.checked
        print_json(
            {
                "kind": result.kind.value,
                "template": result.state,
                "dlt_template_id": result.dlt_template_id,
                "text": checked.text if checked else None,
                "encoding": checked.encoding.value if checked else None,
                "segments": checked.segments if checked else None,
                "mismatch": result.mismatch,
            }
        )
    elif result.checked is not None:
        checked = result.checked
        console.print(
            f"[bold]{result.kind.value}[/] ({result.state}) fits DLT template "
            f"{result.dlt_template_id}: {checked.encoding.value}, {checked.segments} "
            f"{'part' if checked.segments == 1 else 'parts'}"
        )
        console.rule("SMS text")
        console.print(checked.text, markup=False, highlight=False)
    else:
        err_console.print(
            f"[bold red]mismatch:[/] the {result.kind.value} template ({result.state}) would "
            f"not pass DLT template {result.dlt_template_id}: {escape(result.mismatch or '')}",
            highlight=False,
            soft_wrap=True,
        )
    if result.mismatch is not None:
        raise typer.Exit(EXIT_ROWS_FAILED)


def _parse_values(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(f"--values is not valid JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(parsed, dict):
        fail("--values must be a JSON object")
    return parsed


def _version_json(version: TemplateVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "sms_template_id": version.sms_template_id,
        "body": version.body,
        "mapping_id": version.mapping_id,
        "verification": version.verification.value if version.verification else None,
        "dlt_template_id": version.dlt_template_id,
        "dlt_status": version.dlt_status.value if version.dlt_status else None,
    }


def _overview_json(kind: KindOverview) -> dict[str, Any]:
    return {
        "kind": kind.kind.value,
        "in_use": _version_json(kind.in_use),
        "pending": _version_json(kind.pending),
    }


def _in_use_cell(version: TemplateVersion | None) -> str:
    if version is None:
        return "[dim](none)[/]"
    note = ""
    if version.dlt_status is not None and version.dlt_status.value != "approved":
        note = f" [red](DLT template now {version.dlt_status.value})[/]"
    return f"{escape(version.body)}\n[dim]DLT {version.dlt_template_id}[/]{note}"


def _pending_cell(version: TemplateVersion | None) -> str:
    if version is None:
        return "[dim](none)[/]"
    if version.verification is None:
        state = "not mapped"
    else:
        state = f"DLT {version.dlt_template_id}, {version.verification.value}"
    return f"{escape(version.body)}\n[dim]{state}[/]"


def _print_import(path: Path, org: int, report: dlt.DltImportReport) -> None:
    print_import_summary(
        f"{escape(str(path))} -> org {org}: [bold]{report.created}[/] created, "
        f"[bold]{report.updated}[/] updated ({report.rejected_rows_imported} rejected on the "
        "DLT portal)",
        report.errors,
    )
