"""Why one record is or is not visible to one portal user, and which rule decided.

The answer is computed by the same compiled conditions as the listing: one query reads
every condition of the rule, evaluated for that record, with the values it compared, so an
explanation can never disagree with what the user is shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from portalflow.models import CrmRecord, ModuleRole

from ..errors import NotFound
from .compiler import Compiler
from .nodes import ByField, ByValue, Group, Lookup, Node, describe
from .policy import ModulePolicy, Viewer, active_refusal, load_viewer, module_policy
from .problems import AccessRefused
from .records import as_portal_record


@dataclass(frozen=True, slots=True)
class Step:
    """One condition of the rule, evaluated for the record."""

    path: str
    condition: str
    matched: bool
    record_value: Any = None
    user_value: Any = None


@dataclass
class Explanation:
    """The verdict, the rule (path) that decided it, and each condition that was looked at."""

    portal_user_id: int
    module: str
    record: str
    visible: bool
    decided_by: str
    summary: str
    role: str | None = None
    permission_set: str | None = None
    steps: list[Step] = field(default_factory=list)
    permissions: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON answers."""
        return {
            "portal_user_id": self.portal_user_id,
            "module": self.module,
            "record": self.record,
            "visible": self.visible,
            "decided_by": self.decided_by,
            "summary": self.summary,
            "role": self.role,
            "permission_set": self.permission_set,
            "steps": [asdict(step) for step in self.steps],
            "permissions": self.permissions,
        }


def explain(
    session: Session, portal_user_id: int, module: str, crm_id: str, *, org_id: int | None = None
) -> Explanation:
    """Explain the visibility of record ``crm_id`` of ``module`` to the portal user."""
    viewer = load_viewer(session, portal_user_id, org_id)
    answer = Explanation(viewer.portal_user_id, module, crm_id, False, "", "")
    answer.permission_set = viewer.permission_set
    stored = session.execute(
        select(CrmRecord.id, CrmRecord.module, CrmRecord.deleted, CrmRecord.in_recycle_bin).where(
            CrmRecord.org_id == viewer.org_id, CrmRecord.crm_id == crm_id
        )
    ).first()
    if stored is None:
        raise NotFound(f"org {viewer.org_id} has no record {crm_id!r}")
    refusal = active_refusal(viewer)
    if refusal is not None:
        return _verdict(answer, False, "user status", refusal.detail)
    try:
        policy = module_policy(session, viewer, module)
    except AccessRefused as exc:
        return _verdict(answer, False, "module exposure", exc.refusal.detail)
    answer.role = policy.role.value
    if stored.module != module:
        return _verdict(
            answer, False, "module", f"record {crm_id} is a {stored.module} record, not {module}"
        )
    if stored.deleted or stored.in_recycle_bin:
        where = "deleted" if stored.deleted else "in the recycle bin"
        return _verdict(answer, False, "record state", f"record {crm_id} is {where}")
    if policy.role is ModuleRole.PRIMARY:
        mine = stored.id == viewer.record_id
        text = (
            "it is the user's own record"
            if mine
            else f"{module} is the primary module: only the user's own record is shown"
        )
        answer = _verdict(answer, mine, "primary module", text)
    elif policy.rule is None:
        answer = _verdict(answer, True, "public module", f"{module} is public: every record")
    else:
        answer = _evaluate(session, viewer, policy, stored.id, answer)
    if answer.visible:
        row = session.execute(Compiler(policy, viewer, _dialect(session)).one(crm_id)).one()
        seen = as_portal_record(policy, row)
        answer.permissions = {"edit": seen.can_edit, "delete": seen.can_delete}
    return answer


def _verdict(answer: Explanation, visible: bool, decided_by: str, summary: str) -> Explanation:
    answer.visible = visible
    answer.decided_by = decided_by
    answer.summary = ("visible: " if visible else "not visible: ") + summary
    return answer


def _evaluate(
    session: Session, viewer: Viewer, policy: ModulePolicy, record_id: int, answer: Explanation
) -> Explanation:
    assert policy.rule is not None
    compiler = Compiler(policy, viewer, _dialect(session))
    conditions = _conditions(policy.rule)
    columns = []
    for index, leaf in enumerate(conditions):
        columns.append(case((compiler.condition(leaf), True), else_=False).label(f"c{index}"))
        columns.append(compiler.raw(compiler.r, leaf.field).label(f"r{index}"))
        if isinstance(leaf, ByField):
            mine = select(compiler.raw(compiler.p, leaf.primary_field))
            mine = mine.where(compiler.p.c.id == viewer.record_id).scalar_subquery()
            columns.append(mine.label(f"u{index}"))
    row = session.execute(select(*columns).where(compiler.r.c.id == record_id)).one()
    results: dict[str, Step] = {}
    for index, leaf in enumerate(conditions):
        mapping = row._mapping
        results[leaf.path] = Step(
            path=leaf.path,
            condition=describe(leaf, viewer.primary_module),
            matched=bool(mapping[f"c{index}"]),
            record_value=mapping[f"r{index}"],
            user_value=(
                viewer.record_crm_id
                if isinstance(leaf, Lookup)
                else mapping.get(f"u{index}")
                if isinstance(leaf, ByField)
                else None
            ),
        )
    visible, decisive = _decide(policy.rule, results)
    answer.steps = list(results.values())
    paths = ", ".join(step.path for step in decisive)
    words = "; ".join(_said(step) for step in decisive)
    return _verdict(answer, visible, paths, words)


def _conditions(node: Node) -> list[Lookup | ByValue | ByField]:
    if isinstance(node, Group):
        return [leaf for child in node.children for leaf in _conditions(child)]
    return [node]


def _decide(node: Node, results: dict[str, Step]) -> tuple[bool, list[Step]]:
    """The node's outcome and the conditions that decided it."""
    if not isinstance(node, Group):
        step = results[node.path]
        return step.matched, [step]
    outcomes = [_decide(child, results) for child in node.children]
    if node.combine == "any":
        for matched, steps in outcomes:
            if matched:
                return True, steps
        return False, [step for _, steps in outcomes for step in steps]
    for matched, steps in outcomes:
        if not matched:
            return False, steps
    return True, [step for _, steps in outcomes for step in steps]


def _said(step: Step) -> str:
    verdict = "holds" if step.matched else "does not hold"
    seen = f" (record: {step.record_value!r}"
    seen += f", user's: {step.user_value!r})" if step.user_value is not None else ")"
    return f"{step.condition} {verdict}{seen}"


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name
