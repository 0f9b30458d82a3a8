"""The password rule for portal users: length bounds and a strength estimate (zxcvbn).

A password is accepted when it has 12 to 128 characters, is not only spaces, and zxcvbn
(Dropbox's estimator: dictionaries of common passwords, names, keyboard patterns, dates,
l33t substitutions) scores it at least 3 of 4, "safely unguessable" against an online
attack and moderately so offline. Words the user is known by (their name, address, the
org's and portal's names) count as guessable. The 128 cap keeps zxcvbn and scrypt bounded.

    >>> check_password("correct horse battery")          # passes
    >>> check_password("Password1234")                   # PasswordRejected(too_weak)
"""

from __future__ import annotations

from collections.abc import Iterable

from zxcvbn import zxcvbn

from portalflow.models import PasswordProblem
from portalflow.pipelines.errors import InvalidInput

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
MIN_STRENGTH_SCORE = 3  # zxcvbn's 0..4 scale


class PasswordRejected(InvalidInput):
    """A password that breaks the rule, with the reason as a stable code."""

    def __init__(self, problem: PasswordProblem, detail: str) -> None:
        self.problem = problem
        super().__init__(detail)


def check_password(password: str, user_inputs: Iterable[str] = ()) -> None:
    """PasswordRejected unless ``password`` is long enough, not too long and strong enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(
            PasswordProblem.TOO_SHORT,
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters long",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRejected(
            PasswordProblem.TOO_LONG,
            f"the password must be at most {MAX_PASSWORD_LENGTH} characters long",
        )
    if not password.strip():
        raise PasswordRejected(PasswordProblem.BLANK, "the password must not be only spaces")
    inputs = [word for word in user_inputs if word]
    estimate = zxcvbn(password, user_inputs=inputs, max_length=MAX_PASSWORD_LENGTH)
    if estimate["score"] < MIN_STRENGTH_SCORE:
        warning = estimate["feedback"].get("warning") or "it is too easy to guess"
        raise PasswordRejected(
            PasswordProblem.TOO_WEAK,
            f"the password is too weak: {warning.rstrip('.')}; a few uncommon words work well",
        )


def check_confirmation(password: str, confirmation: str) -> None:
    """PasswordRejected(mismatch) when the two typed passwords differ."""
    if password != confirmation:
        raise PasswordRejected(PasswordProblem.MISMATCH, "the two passwords are not the same")
