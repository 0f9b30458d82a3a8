"""``portalflow access``: what portal users may see and do (exposure, permission sets).

Rules, field lists and permission-set overrides are JSON, given inline or as ``@file``.
Every definition is checked when saved; a refusal lists each problem with its code and
where it is, and exits 2 with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from portalflow.pipelines.access import catalogue, compiler, config
from portalflow.pipelines.access.problems import AccessInvalid

from . import access_explain
from .common import JsonFlag, console, err_console, fail, new_app, open_session, print_json

app = new_app(
    "What portal users may see and do: field catalogues, exposed modules (lookup links and "
    "criteria), record and field permissions, permission sets, and why a record shows."
)
fields_app = new_app("The field catalogue of a module: names, types, picklist options, PII/ePHI.")
sets_app = new_app("Permission sets: named profiles that override a user type's defaults.")
app.add_typer(fields_app, name="fields")
app.add_typer(sets_app, name="sets")
app.command("explain")(access_explain.explain_command)

Org = Annotated[int, typer.Option("--org", help="The org id.")]
UserType = Annotated[int, typer.Option("--user-type", help="The portal user type id.")]
Module = Annotated[str, typer.Option("--module", help="The CRM module, e.g. Quotes.")]


def _json_argument(text: str, what: str) -> Any:
    """Inline JSON, or ``@path`` of a JSON file."""
    source = text
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {what} file {str(path)!r}: {exc.strerror}")
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")


def _refused(exc: AccessInvalid, as_json: bool) -> None:
    if as_json:
        print_json({"problems": [p.as_dict() for p in exc.problems]})
    else:
        err_console.print(f"[bold red]error:[/] refused, {len(exc.problems)} problem(s):")
        for problem in exc.problems:
            err_console.print(
                f"  [bold]{escape(problem.code.value)}[/] at {escape(problem.where)}: "
                f"{escape(problem.detail)}",
                highlight=False,
                soft_wrap=True,
            )
    raise typer.Exit(2)


@fields_app.command("set")
def fields_set(
    org: Org,
    module: Module,
    fields: Annotated[
        str,
        typer.Argument(
            help='The fields as JSON or @file: [{"name": "Quote_Stage", "type": "picklist", '
            '"options": ["Draft", "Approved"]}, {"name": "Contact_Name", "type": "lookup", '
            '"lookup_module": "Contacts"}, {"name": "email", "type": "text", "pii": true}]'
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Replace a module's whole field catalogue.

    Types: `text`, `picklist` (with `options`), `number`, `date` (YYYY-MM-DD), `boolean`,
    `lookup` (with `lookup_module`). Flags `pii` and `ephi` keep a field hidden from
    portal users unless a permission set shows it. A field named like a record column
    (`first_name`, `last_name`, `email`, `phone`, `crm_id`) reads that column; any other
    name reads the record's extra field of that name. Refused when a saved rule or
    permission set would no longer be valid.

    Example: `portalflow access fields set --org 1 --module Quotes @quotes-fields.json`
    """
    raw = _json_argument(fields, "the field list")
    try:
        with open_session() as session:
            specs = config.define_fields(session, org, module, raw)
    except AccessInvalid as exc:
        _refused(exc, as_json)
    if as_json:
        print_json({"module": module, "fields": [s.as_dict() for s in specs]})
        return
    console.print(f"{escape(module)} of org {org}: [bold]{len(specs)}[/] fields saved.")


@fields_app.command("show")
def fields_show(
    org: Org,
    module: Annotated[str | None, typer.Option("--module", help="Only this module.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the org's field catalogues."""
    with open_session() as session:
        view = catalogue.catalogue_view(session, org, module)
    if as_json:
        print_json(view)
        return
    for name, specs in view.items():
        table = Table(title=f"{name} (org {org})")
        for column in ("field", "type", "details", "PII", "ePHI"):
            table.add_column(column)
        for spec in specs:
            details = ", ".join(spec["options"] or []) or (
                f"-> {spec['lookup_module']}" if spec["lookup_module"] else ""
            )
            table.add_row(
                escape(spec["name"]),
                spec["type"],
                escape(details),
                "yes" if spec["pii"] else "",
                "yes" if spec["ephi"] else "",
            )
        console.print(table)


RuleOption = Annotated[
    str | None,
    typer.Option(
        "--rule",
        help='The rule as JSON or @file, e.g. {"any": [{"lookup": "Contact_Name"}, '
        '{"field": "Region", "op": "in", "value": ["Ohio"]}, {"field": "Service_Region", '
        '"op": "equals", "primary_field": "Mailing_State"}]}',
    ),
]
PublicFlag = Annotated[
    bool, typer.Option("--public", help="Every record (or those the rule keeps), view only.")
]
AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        help="A record permission to give: create, edit, edit_shared or delete (repeat it).",
    ),
]
NoViewFlag = Annotated[
    bool, typer.Option("--no-view", help="Expose it with view turned off by default.")
]
FieldOption = Annotated[
    list[str] | None,
    typer.Option("--field", help="NAME=visible|read_only|hidden for one field (repeat it)."),
]


@app.command("expose")
def expose(
    org: Org,
    user_type: UserType,
    module: Module,
    rule: RuleOption = None,
    public: PublicFlag = False,
    allow: AllowOption = None,
    deny_view: NoViewFlag = False,
    field: FieldOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Expose a module to a user type's portal users, or replace how it is exposed.

    A related module needs a rule: `{"lookup": F}` links records whose lookup F points at
    the user's own record; `{"field", "op", "value"}` matches by value; `{"field", "op",
    "primary_field"}` matches by a field of the user's own record; `{"all": [...]}` and
    `{"any": [...]}` combine them. The primary module takes no rule (it shows the user's own
    record). Unnamed permissions are off, except view.

    Example: `portalflow access expose --org 1 --user-type 1 --module Quotes
    --rule '{"all": [{"lookup": "Contact_Name"}, {"field": "Quote_Stage", "op": "equals",
    "value": "Approved"}]}' --allow edit`
    """
    permissions: dict[str, bool] = dict.fromkeys(allow or [], True)
    if deny_view:
        permissions["view"] = False
    levels = _field_levels(field or [])
    parsed = _json_argument(rule, "the rule") if rule is not None else None
    try:
        with open_session() as session:
            exposure = config.expose_module(
                session,
                org,
                user_type,
                module,
                public=public,
                rule=parsed,
                permissions=permissions,
                fields=levels,
            )
            view = config.exposure_view(exposure)
    except AccessInvalid as exc:
        _refused(exc, as_json)
    if as_json:
        print_json(view)
        return
    allowed = ", ".join(a for a, on in view["permissions"].items() if on) or "nothing"
    shown = view["rule_text"] or _ROLE_WORDS[view["role"]]
    console.print(
        f"{escape(module)} exposed to user type {user_type} as [bold]{view['role']}[/]: "
        f"{escape(shown)}; allowed: {allowed}."
    )


def _field_levels(items: list[str]) -> dict[str, str]:
    """``--field NAME=LEVEL`` options as a mapping."""
    levels: dict[str, str] = {}
    for item in items:
        name, sep, level = item.partition("=")
        if not sep:
            fail(f"--field {item!r}: write NAME=visible, NAME=read_only or NAME=hidden")
        levels[name.strip()] = level.strip()
    return levels


_ROLE_WORDS = {"primary": "the user's own record", "public": "every record", "related": ""}


@app.command("unexpose")
def unexpose(org: Org, user_type: UserType, module: Module) -> None:
    """Stop exposing a module to a user type (its permission-set overrides stay, unused)."""
    with open_session() as session:
        removed = config.unexpose_module(session, org, user_type, module)
    if not removed:
        fail(f"{module} is not exposed to user type {user_type}")
    console.print(f"{escape(module)} is no longer exposed to user type {user_type}.")


@app.command("show")
def show(org: Org, user_type: UserType, as_json: JsonFlag = False) -> None:
    """Show what a user type exposes: each module, its rule in words, its permissions."""
    with open_session() as session:
        view = config.show_user_type(session, org, user_type)
    if as_json:
        print_json(view)
        return
    table = Table(
        title=f"{escape(view['user_type'])} (user type {user_type}, primary module "
        f"{escape(view['primary_module'])})"
    )
    for column in ("module", "role", "visible records", "allowed", "fields"):
        table.add_column(column, overflow="fold")
    for module in view["modules"]:
        table.add_row(
            escape(module["module"]),
            module["role"],
            escape(module["rule_text"]),
            ", ".join(a for a, on in module["permissions"].items() if on) or "-",
            escape(", ".join(f"{n}={v}" for n, v in module["fields"].items()) or "-"),
        )
    console.print(table)
    for pset in view["permission_sets"]:
        shown = [flag for flag in ("show_pii", "show_ephi") if pset[flag]]
        console.print(
            f"permission set [bold]{escape(pset['name'])}[/]"
            f"{' (' + ', '.join(shown) + ')' if shown else ''}: "
            f"{escape(json.dumps(pset['modules']))}"
        )


@app.command("indexes")
def indexes(org: Org, user_type: UserType, module: Module) -> None:
    """Print the PostgreSQL indexes the module's rule needs (run them once, as a DBA).

    Lookups and matches on a value are answered from expression indexes on the record's
    extra fields; without them a page of a large module scans the whole module.
    """
    with open_session() as session:
        statements = compiler.needed_indexes(session, org, user_type, module)
    if not statements:
        console.print(f"{escape(module)}: the rule needs no index beyond the table's own.")
    for statement in statements:
        typer.echo(statement + ";")


@sets_app.command("define")
def sets_define(
    org: Org,
    user_type: UserType,
    name: Annotated[str, typer.Option(help="The set's name, unique in the org.")],
    modules: Annotated[
        str | None,
        typer.Option(
            help='Overrides per module as JSON or @file, e.g. {"Quotes": {"edit": true, '
            '"fields": {"Amount": "read_only"}}, "Contacts": {"fields": {"email": "visible"}}}'
        ),
    ] = None,
    show_pii: Annotated[
        bool, typer.Option("--show-pii", help="Let the set show PII fields (visible by default).")
    ] = False,
    show_ephi: Annotated[
        bool, typer.Option("--show-ephi", help="Let the set show ePHI fields.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create or replace a permission set of a user type.

    An override names any of `create`, `view`, `edit`, `edit_shared`, `delete` (true or
    false) and `fields` (field -> visible, read_only or hidden); what it leaves out keeps the
    user type's default. PII/ePHI fields stay hidden unless `--show-pii` / `--show-ephi`.

    Example: `portalflow access sets define --org 1 --user-type 1 --name Vendors-PII
    --show-pii --modules '{"Contacts": {"fields": {"email": "read_only"}}}'`
    """
    parsed = _json_argument(modules, "the overrides") if modules is not None else {}
    try:
        with open_session() as session:
            row = config.define_permission_set(
                session,
                org,
                user_type,
                name,
                show_pii=show_pii,
                show_ephi=show_ephi,
                modules=parsed,
            )
            view = config.permission_set_view(row)
    except AccessInvalid as exc:
        _refused(exc, as_json)
    if as_json:
        print_json(view)
        return
    console.print(f"permission set [bold]{escape(name)}[/] saved for user type {user_type}.")


@sets_app.command("delete")
def sets_delete(org: Org, name: Annotated[str, typer.Option(help="The set's name.")]) -> None:
    """Delete a set; its users fall back to their user type's defaults."""
    with open_session() as session:
        held = config.delete_permission_set(session, org, name)
    console.print(f"permission set [bold]{escape(name)}[/] deleted; {held} user(s) held it.")


@app.command("assign")
def assign(
    org: Org,
    users: Annotated[list[int], typer.Argument(help="Portal user ids.")],
    permission_set: Annotated[
        str | None, typer.Option("--set", help="The permission set's name.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Take their set away: the type's defaults apply.")
    ] = False,
) -> None:
    """Give portal users a permission set (one each; it replaces the one they held).

    Example: `portalflow access assign --org 1 --set Vendors-PII 12 13`
    """
    if (permission_set is None) == (not clear):
        fail("give --set NAME, or --clear, not both")
    try:
        with open_session() as session:
            count = config.assign_permission_set(session, org, users, permission_set)
    except AccessInvalid as exc:
        _refused(exc, False)
    what = f"permission set {permission_set}" if permission_set else "their type's defaults"
    console.print(f"{count} portal user(s) now hold {escape(what)}.")
