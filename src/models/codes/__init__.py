"""The one registry of portalflow's codes: every code an admin, a CRM or a client reads.

- ``reasons``: why an invitation failed before the send (the spec's reasons, ``ReasonCode``)
  and at or after it (``SendFailureCode``), with their meanings.
- ``outcomes``: what a provider said after the send (``OutcomeCode``), with their meanings.
- ``events``: how a CRM event failed (``CrmEventCode``).
- ``refusals``: why a bulk action or a transfer refused one user (``Refusal``: code + detail).
- ``problems``: the HTTP API's error codes, and why a link's token or a password was refused.
- ``signin``: why a portal user's sign-in was refused (``SignInRefusal``).
- ``webhooks``: why a CRM webhook delivery failed, or an endpoint's URL was refused.
- ``access``: why a portal access rule was refused when saved, or a record request refused.

A refusal is a value with a code; flows never build codes into their messages, and tests
assert codes, not words.
"""

from .access import ACCESS_DESCRIPTIONS, AccessCode
from .events import CrmEventCode
from .outcomes import OUTCOME_DESCRIPTIONS, OutcomeCode
from .problems import AcceptanceProblem, PasswordProblem, ProblemCode, TokenProblem
from .reasons import (
    REASON_DESCRIPTIONS,
    SEND_FAILURE_DESCRIPTIONS,
    ReasonCode,
    SendFailureCode,
    describe_failure,
)
from .refusals import Refusal, RefusalCode
from .signin import SIGN_IN_REFUSAL_DESCRIPTIONS, SignInRefusal
from .webhooks import WEBHOOK_FAILURE_DESCRIPTIONS, WebhookFailureCode, WebhookUrlRefusal

__all__ = [
    "ACCESS_DESCRIPTIONS",
    "OUTCOME_DESCRIPTIONS",
    "REASON_DESCRIPTIONS",
    "SEND_FAILURE_DESCRIPTIONS",
    "SIGN_IN_REFUSAL_DESCRIPTIONS",
    "WEBHOOK_FAILURE_DESCRIPTIONS",
    "AcceptanceProblem",
    "AccessCode",
    "CrmEventCode",
    "OutcomeCode",
    "PasswordProblem",
    "ProblemCode",
    "ReasonCode",
    "Refusal",
    "RefusalCode",
    "SendFailureCode",
    "SignInRefusal",
    "TokenProblem",
    "WebhookFailureCode",
    "WebhookUrlRefusal",
    "describe_failure",
]
