"""Why a portal user's sign-in was refused: one code each, and its meaning."""

from __future__ import annotations

from enum import StrEnum


class SignInRefusal(StrEnum):
    """Why a sign-in, code request, reset or session check was refused (a value, not text)."""

    INVALID_CREDENTIALS = "invalid_credentials"  # no such account, or a wrong password or code
    UNCONFIRMED = "unconfirmed"  # the invitation was never accepted
    LOGIN_SUSPENDED = "login_suspended"  # the email changed and is not confirmed yet
    DEACTIVATED = "deactivated"
    REMOVED = "removed"
    LOCKED_OUT = "locked_out"  # too many failed attempts on this account
    RATE_LIMITED = "rate_limited"  # too many attempts from this client address
    INVALID_RESET_TOKEN = "invalid_reset_token"  # unknown, used, expired or superseded
    NO_SESSION = "no_session"  # no session token, or one we never issued
    SESSION_EXPIRED = "session_expired"
    SESSION_ENDED = "session_ended"  # logged out or revoked


SIGN_IN_REFUSAL_DESCRIPTIONS: dict[SignInRefusal, str] = {
    SignInRefusal.INVALID_CREDENTIALS: "The sign-in details are not right.",
    SignInRefusal.UNCONFIRMED: (
        "This account's invitation was never accepted: use the link of the invitation first."
    ),
    SignInRefusal.LOGIN_SUSPENDED: (
        "The account's email address changed: confirm the new address with the link sent to "
        "it, then sign in."
    ),
    SignInRefusal.DEACTIVATED: "This account is deactivated; ask the portal's admin.",
    SignInRefusal.REMOVED: "This account was removed from the portal; ask the portal's admin.",
    SignInRefusal.LOCKED_OUT: (
        "Too many failed attempts on this account; wait before trying again."
    ),
    SignInRefusal.RATE_LIMITED: "Too many attempts from this address; wait before trying again.",
    SignInRefusal.INVALID_RESET_TOKEN: (
        "This reset link is not valid any more (used, expired after one hour, or replaced by a "
        "newer one); ask for a new one."
    ),
    SignInRefusal.NO_SESSION: "Not signed in.",
    SignInRefusal.SESSION_EXPIRED: "The session expired; sign in again.",
    SignInRefusal.SESSION_ENDED: "The session was ended (signed out or revoked); sign in again.",
}
