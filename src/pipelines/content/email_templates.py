"""An org's custom email templates: validate and save, reset to default, show.

A template is refused at save time (nothing written) when it could not be sent correctly
later: bad syntax, no portal link, an unknown variable, an expression the sandbox forbids,
or a trial render past a bound (``TemplateTooSlow`` / ``TemplateTooLarge``, each an
``InvalidInput`` with its ``code``; see ``render_limits``).
The link must be visible: an ``href`` in the HTML part and text in the plain-text part,
never only inside a comment or a hidden element (see ``html_text.visible_links``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portalflow.models import EmailKind, EmailTemplate
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.tenancy.orgs import get_user_type

from .html_text import visible_links
from .render_limits import TemplateLimitExceeded, budget
from .rendering import (
    CONTEXT_NAMES,
    HTML_ENV,
    LINK_VARIABLE,
    SUPPORTED_LANGUAGES,
    TEXT_ENV,
    CompiledEmailTemplate,
    RenderedEmail,
    build_context,
    default_source,
    email_kind,
)

MAX_SUBJECT_LENGTH = 998  # the column's width, and RFC 5322's line limit

# A trial render uses this link; the rendered HTML must still contain it.
_SAMPLE_LINK = "https://portal.example.com/sample-portal/action?token=SAMPLE-TOKEN"
_SAMPLE_RECORD = {
    "crm_id": "1000001",
    "module": "Contacts",
    "first_name": "Sage",
    "last_name": "Weiser",
    "email": "sage.weiser@example.com",
    "phone": "+15555550100",
}


def save_custom_template(
    session: Session,
    org_id: int,
    user_type_id: int,
    kind: EmailKind | str,
    language: str,
    *,
    subject: str,
    html_body: str,
    text_body: str | None = None,
) -> EmailTemplate:
    """Validate then upsert the org's template for (user type, kind, language); flushed."""
    user_type = get_user_type(session, org_id, user_type_id)
    kind = email_kind(kind)
    language = _supported_language(language)
    subject = subject.strip()
    if not subject:
        raise InvalidInput("the subject must not be empty")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise InvalidInput(f"the subject is longer than {MAX_SUBJECT_LENGTH} characters")
    if not html_body.strip():
        raise InvalidInput("the HTML body must not be empty")
    if text_body is not None and not text_body.strip():
        text_body = None  # an empty text part means: derive it from the HTML
    validate_template(kind, subject=subject, html_body=html_body, text_body=text_body)

    saved = _saved(session, user_type.id, kind, language)
    if saved is None:
        saved = EmailTemplate(
            org_id=org_id, user_type_id=user_type.id, kind=kind, language=language
        )
        session.add(saved)
    saved.subject = subject
    saved.html_body = html_body
    saved.text_body = text_body
    session.flush()
    return saved


def reset_template(
    session: Session, org_id: int, user_type_id: int, kind: EmailKind | str, language: str
) -> bool:
    """Restore the shipped default by deleting the custom row; True if one existed."""
    get_user_type(session, org_id, user_type_id)
    result = session.execute(
        delete(EmailTemplate).where(
            EmailTemplate.user_type_id == user_type_id,
            EmailTemplate.kind == email_kind(kind),
            EmailTemplate.language == _supported_language(language),
        )
    )
    session.flush()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def show_template(
    session: Session, org_id: int, user_type_id: int, kind: EmailKind | str, language: str
) -> dict[str, Any]:
    """The template in effect: ``subject``, ``html_body``, ``text_body``, ``is_custom``,
    ``language``."""
    get_user_type(session, org_id, user_type_id)
    kind = email_kind(kind)
    language = _supported_language(language)
    saved = _saved(session, user_type_id, kind, language)
    if saved is not None:
        return {
            "subject": saved.subject,
            "html_body": saved.html_body,
            "text_body": saved.text_body,
            "is_custom": True,
            "language": language,
        }
    return {**default_source(kind, language), "is_custom": False, "language": language}


def validate_template(
    kind: EmailKind, *, subject: str, html_body: str, text_body: str | None
) -> None:
    """Raise InvalidInput (naming the part) unless the template will render and carry the link."""
    link_variable = LINK_VARIABLE[kind]
    allowed = CONTEXT_NAMES | {link_variable}
    parts = [("subject", subject, TEXT_ENV), ("HTML body", html_body, HTML_ENV)]
    if text_body is not None:
        parts.append(("text body", text_body, TEXT_ENV))

    for part, source, env in parts:
        ast = _parse(env, part, source)
        used = meta.find_undeclared_variables(ast)
        if part != "subject" and not used & {link_variable, "link"}:
            raise InvalidInput(
                f"the {kind.value} template must contain the portal link "
                f"{{{{ {link_variable} }}}} in its {part}; use reset to restore the default"
            )
        unknown = sorted(used - allowed)
        if unknown:
            raise InvalidInput(
                f"the {part} uses unknown variable(s) {', '.join(unknown)}; "
                f"available: {', '.join(sorted(allowed))}"
            )
        _refuse_private_names(ast, part)

    with budget():
        compiled = _trial_render(kind, subject, html_body, text_body)
        shown = visible_links(compiled.html)
    if _SAMPLE_LINK not in compiled.html or (
        text_body is not None and _SAMPLE_LINK not in compiled.text
    ):
        raise InvalidInput(
            f"the {kind.value} template must show the portal link {{{{ {link_variable} }}}} "
            "unchanged (it was hidden or altered in a trial render); "
            "use reset to restore the default"
        )
    # The text part made from the HTML leaves hidden content out, so a visible href is
    # what puts the link in it too; a text body of its own was checked above.
    if _SAMPLE_LINK not in shown:
        raise InvalidInput(
            f"the {kind.value} template must show the portal link {{{{ {link_variable} }}}} "
            'as a visible link (<a href="...">) in its HTML body, not only in a comment or '
            "a hidden element; use reset to restore the default"
        )


def _parse(env: Environment, part: str, source: str) -> nodes.Template:
    try:
        return env.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(
            f"the {part} has a template syntax error on line {exc.lineno}: {exc.message}"
        ) from None


def _refuse_private_names(ast: nodes.Template, part: str) -> None:
    """Refuse ``_``-names even in branches a trial render would not take."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
        if isinstance(name, str) and name.startswith("_"):
            raise InvalidInput(
                f"the {part} tried to reach something not allowed ({name!r}, line {node.lineno})"
            )


def _constant(node: nodes.Node) -> object:
    return node.value if isinstance(node, nodes.Const) else None


def _trial_render(
    kind: EmailKind, subject: str, html_body: str, text_body: str | None
) -> RenderedEmail:
    compiled = CompiledEmailTemplate(
        kind=kind,
        language="en",
        is_custom=True,
        subject=subject,
        html_body=html_body,
        text_body=text_body,
    )
    context = build_context(
        record=_SAMPLE_RECORD,
        org_name="Zylker",
        portal_name="Zylker Portal",
        portal_url="https://portal.example.com/sample-portal",
        user_type_name="Client Portal",
        inviter_name="Russell Brown",
        link=_SAMPLE_LINK,
        kind=kind,
        expires_at=datetime.now(UTC),
    )
    try:
        return compiled.render(context)
    except TemplateLimitExceeded:
        raise  # refused with its own code (template_too_slow / template_too_large)
    except SecurityError as exc:
        raise InvalidInput(f"the template tried to reach something not allowed: {exc}") from None
    except TemplateError as exc:
        raise InvalidInput(f"the template failed a trial render: {exc}") from None
    except Exception as exc:  # any error a template expression can raise, e.g. 1 / 0
        raise InvalidInput(
            f"the template failed a trial render: {type(exc).__name__}: {exc}"
        ) from None


def _supported_language(language: str) -> str:
    code = language.strip().lower() if isinstance(language, str) else ""
    if code not in SUPPORTED_LANGUAGES:
        raise InvalidInput(
            f"language {language!r} is not supported; "
            f"choose one of {', '.join(SUPPORTED_LANGUAGES)}"
        )
    return code


def _saved(
    session: Session, user_type_id: int, kind: EmailKind, language: str
) -> EmailTemplate | None:
    return session.scalar(
        select(EmailTemplate).where(
            EmailTemplate.user_type_id == user_type_id,
            EmailTemplate.kind == kind,
            EmailTemplate.language == language,
        )
    )
