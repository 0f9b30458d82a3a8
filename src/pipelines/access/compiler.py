"""One module's rules for one portal user, compiled to one SQLAlchemy Core query.

The user's own record is read inside the query for a match by field (scalar subqueries on
its primary key, which PostgreSQL evaluates once, as InitPlans), so it costs no round trip
of its own. A lookup link compares with the user's CRM id, read with the user, written
into the statement as a literal: PostgreSQL then estimates how many records link to that
user from its statistics (with a parameter it guesses, and for a multi-select lookup
guesses a plan that walks the whole module). Field names are checked against the
catalogue's safe pattern before they are written into SQL, so a JSON key is always a plain
literal (which is what lets PostgreSQL use an expression index on it).
:func:`index_statements` names the indexes a module's rules need on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause

from portalflow.models import CrmRecord, FieldType, ModuleRole, RuleOperator
from portalflow.models.records import RECORD_COLUMNS

from .catalogue import FIELD_NAME, FieldSpec
from .exposures import saved_rule
from .nodes import ByField, ByValue, Group, Lookup, Node, leaves
from .policy import ModulePolicy, Viewer

Op = RuleOperator
RECORDS = CrmRecord.__table__
_TRUE_WORDS = ("true", "1", "yes")
_FALSE_WORDS = ("false", "0", "no")
_NUMBER = r"^\s*[-+]?[0-9]+(\.[0-9]+)?\s*$"


class Compiler:
    """Builds the SQL of one viewer's policy on one database dialect."""

    def __init__(self, policy: ModulePolicy, viewer: Viewer, dialect: str) -> None:
        self.policy = policy
        self.viewer = viewer
        self.dialect = dialect
        self.r = RECORDS
        self.p = RECORDS.alias("p")

    # -- the whole query --------------------------------------------------------------------

    def base(self) -> ColumnElement[bool]:
        """The module's live records of the org."""
        r = self.r
        return and_(
            r.c.org_id == self.viewer.org_id,
            r.c.module == self.policy.module,
            not_(r.c.deleted),
            not_(r.c.in_recycle_bin),
        )

    def visible(self) -> ColumnElement[bool]:
        """Whether a record of the module is visible to the viewer."""
        if self.policy.role is ModuleRole.PRIMARY:
            return self.r.c.id == self.viewer.record_id
        if self.policy.rule is None:
            return true()
        return self.condition(self.policy.rule)

    def own(self) -> ColumnElement[bool]:
        """Whether a visible record is the viewer's own (linked by lookup), not shared."""
        if self.policy.role is ModuleRole.PRIMARY:
            return true()
        if self.policy.role is ModuleRole.PUBLIC or self.policy.rule is None:
            return false()
        links = [
            self.condition(leaf) for leaf in leaves(self.policy.rule) if isinstance(leaf, Lookup)
        ]
        return or_(*links) if links else false()

    def page(self, *, after: int | None, limit: int) -> Select[Any]:
        """A keyset page (by record id) of the visible records, one more than ``limit``."""
        query = self._select().where(self.base(), self.visible())
        if after is not None:
            query = query.where(self.r.c.id > after)
        return query.order_by(self.r.c.id).limit(limit + 1)

    def one(self, crm_id: str) -> Select[Any]:
        """The visible record with that CRM id (no row when it is not visible)."""
        return self._select().where(self.base(), self.visible(), self.r.c.crm_id == crm_id)

    def _select(self) -> Select[Any]:
        r = self.r
        columns = sorted(
            {s.name for s in self.policy.shown() if s.name in RECORD_COLUMNS} - {"crm_id"}
        )
        own = case((self.own(), True), else_=False).label("own")
        return select(r.c.id, r.c.crm_id, r.c.fields, *(r.c[name] for name in columns), own)

    # -- conditions -------------------------------------------------------------------------

    def condition(self, node: Node) -> ColumnElement[bool]:
        """The SQL of one rule node, for the record ``r``."""
        if isinstance(node, Group):
            parts = [self.condition(child) for child in node.children]
            return and_(*parts) if node.combine == "all" else or_(*parts)
        if isinstance(node, Lookup):
            mine = literal(self.viewer.record_crm_id, String, literal_execute=True)
            if node.field.type is FieldType.MULTI_LOOKUP:
                return self._among(node.field, mine)
            return self.raw(self.r, node.field) == mine
        if isinstance(node, ByValue):
            return self._by_value(node)
        return self._by_field(node)

    def raw(self, table: TableClause, spec: FieldSpec) -> ColumnElement[Any]:
        """A field's value as text: its column, or its extra field."""
        if spec.name in RECORD_COLUMNS:
            return table.c[spec.name]
        if not FIELD_NAME.match(spec.name):  # the catalogue never stores one; belt and braces
            raise ValueError(f"unsafe field name {spec.name!r}")
        if self.dialect == "postgresql":
            return table.c.fields.op("->>", return_type=String)(literal_column(f"'{spec.name}'"))
        path = literal_column(f"'$.\"{spec.name}\"'")
        return cast(func.json_extract(table.c.fields, path), Text)

    def _among(self, spec: FieldSpec, crm_id: ColumnElement[Any]) -> ColumnElement[bool]:
        """Whether the record's multi-select lookup (a JSON list) holds ``crm_id``."""
        key = literal_column(f"'{spec.name}'")
        if self.dialect == "postgresql":
            holder = self.r.c.fields.op("->", return_type=JSONB)(key)
            return holder.op("@>", return_type=Boolean)(func.jsonb_build_array(crm_id))
        path = literal_column(f"'$.\"{spec.name}\"'")
        items = func.json_each(self.r.c.fields, path).table_valued("value")
        listed = select(items.c.value).where(items.c.value == crm_id).exists()
        return and_(func.json_type(self.r.c.fields, path) == "array", listed)

    def _primary(self, expression: ColumnElement[Any]) -> ColumnElement[Any]:
        return select(expression).where(self.p.c.id == self.viewer.record_id).scalar_subquery()

    def _by_value(self, node: ByValue) -> ColumnElement[bool]:
        spec, op, value = node.field, node.op, node.value
        raw = self.raw(self.r, spec)
        empty = ("", "[]") if spec.type is FieldType.MULTI_LOOKUP else ("",)
        if op is Op.IS_EMPTY:
            return or_(raw.is_(None), raw.in_(empty))
        if op is Op.IS_NOT_EMPTY:
            return and_(raw.is_not(None), raw.not_in(empty))
        if spec.type is FieldType.BOOLEAN:
            return func.lower(raw).in_(_TRUE_WORDS if value else _FALSE_WORDS)
        left = self._typed(spec, raw)
        if isinstance(value, tuple):
            constants = [self._constant(spec, v) for v in value]
            if op is Op.IN:
                return left.in_(constants)
            return or_(raw.is_(None), left.not_in(constants))
        return self._compare(op, raw, left, self._constant(spec, value), len(str(value)))

    def _by_field(self, node: ByField) -> ColumnElement[bool]:
        spec, other = node.field, node.primary_field
        raw = self.raw(self.r, spec)
        mine = self._primary(self.raw(self.p, other))
        right = self._typed(spec, mine) if spec.type is not FieldType.LOOKUP else mine
        if spec.type is FieldType.LOOKUP and other.type in (FieldType.TEXT, FieldType.PICKLIST):
            right = func.lower(mine)
            left = func.lower(raw)
        else:
            left = self._typed(spec, raw)
        compared = self._compare(node.op, raw, left, right, None)
        return and_(mine.is_not(None), mine != "", compared)

    def _typed(self, spec: FieldSpec, raw: ColumnElement[Any]) -> ColumnElement[Any]:
        if spec.type in (FieldType.TEXT, FieldType.PICKLIST):
            return func.lower(raw)
        if spec.type is FieldType.NUMBER:
            return case((raw.regexp_match(_NUMBER), cast(raw, Float)))
        if spec.type is FieldType.DATE:
            return func.substr(raw, 1, 10)
        return raw

    def _constant(self, spec: FieldSpec, value: Any) -> Any:
        if spec.type in (FieldType.TEXT, FieldType.PICKLIST):
            return str(value).lower()
        return value

    def _compare(
        self,
        op: RuleOperator,
        raw: ColumnElement[Any],
        left: ColumnElement[Any],
        right: Any,
        length: int | None,
    ) -> ColumnElement[bool]:
        if op is Op.EQUALS:
            return left == right
        if op is Op.NOT_EQUALS:
            return or_(raw.is_(None), left != right)
        if op is Op.LESS_THAN:
            return left < right
        if op is Op.LESS_OR_EQUAL:
            return left <= right
        if op is Op.GREATER_THAN:
            return left > right
        if op is Op.GREATER_OR_EQUAL:
            return left >= right
        if op is Op.STARTS_WITH:
            size = length if length is not None else func.length(right)
            return func.substr(left, 1, size) == right
        found = self._position(left, right) > 0
        if op is Op.CONTAINS:
            return found
        if op is Op.NOT_CONTAINS:
            return or_(raw.is_(None), not_(found))
        raise ValueError(f"operator {op.value} has no SQL here")

    def _position(self, haystack: ColumnElement[Any], needle: Any) -> ColumnElement[int]:
        if self.dialect == "postgresql":
            return func.strpos(haystack, needle)
        return func.instr(haystack, needle)


def needed_indexes(session: Session, org_id: int, user_type_id: int, module: str) -> list[str]:
    """The PostgreSQL indexes the rule a user type has for ``module`` needs."""
    return index_statements(module, saved_rule(session, org_id, user_type_id, module))


def index_statements(module: str, rule: Node | None) -> list[str]:
    """The PostgreSQL indexes a module's rule needs, as CREATE INDEX statements.

    A lookup link and a match on a field's value use an expression index on
    ``(org_id, module, <the field's expression>)``: exact for lookups, ``lower(...)`` for
    text and picklists (the comparisons ignore case). Only ``equals`` and ``in`` on text,
    picklist and lookup fields can use one. An ``all`` needs one indexed condition (a lookup
    first), an ``any`` one in every branch (else no index can serve it).
    """
    if rule is None:
        return []
    statements: dict[str, str] = {}
    for leaf in _indexed_leaves(rule) or []:
        spec = leaf.field
        slug = "".join(c if c.isalnum() else "_" for c in spec.name.lower())
        module_slug = "".join(c if c.isalnum() else "_" for c in module.lower())
        name = f"ix_crm_records_{module_slug}_{slug}"
        if spec.type is FieldType.MULTI_LOOKUP:  # "contains" on a JSON list: a GIN index
            statements[name] = (
                f"CREATE INDEX IF NOT EXISTS {name} ON crm_records "
                f"USING gin ((fields -> '{spec.name}') jsonb_path_ops)"
            )
            continue
        raw = spec.name if spec.name in RECORD_COLUMNS else f"(fields ->> '{spec.name}')"
        folded = spec.type in (FieldType.TEXT, FieldType.PICKLIST) or (
            isinstance(leaf, ByField) and leaf.primary_field.type is not FieldType.LOOKUP
        )
        expression = f"lower({raw})" if folded else raw
        statements[name] = (
            f"CREATE INDEX IF NOT EXISTS {name} ON crm_records (org_id, module, ({expression}))"
        )
    return list(statements.values())


def _indexed_leaves(node: Node) -> list[Lookup | ByValue | ByField] | None:
    """The conditions whose indexes let PostgreSQL find the node's records; None: none can."""
    if isinstance(node, Group):
        found = [_indexed_leaves(child) for child in node.children]
        if node.combine == "any":
            if any(leaves_ is None for leaves_ in found):
                return None
            return [leaf for leaves_ in found if leaves_ is not None for leaf in leaves_]
        usable = [leaves_ for leaves_ in found if leaves_ is not None]
        usable.sort(key=lambda leaves_: not all(isinstance(x, Lookup) for x in leaves_))
        return usable[0] if usable else None
    if isinstance(node, Lookup):
        return [node]
    # Numbers and dates are compared through a guarded cast or a prefix: no plain index.
    if node.field.type not in _INDEXED_TYPES:
        return None
    if isinstance(node, ByField):
        return [node] if node.op is Op.EQUALS else None
    return [node] if node.op in (Op.EQUALS, Op.IN) else None


_INDEXED_TYPES = frozenset({FieldType.TEXT, FieldType.PICKLIST, FieldType.LOOKUP})
