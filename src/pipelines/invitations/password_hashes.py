"""Passwords stored only as an Argon2id hash: hash, verify, and upgrade older hashes.

argon2-cffi's PHC string, ``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>``: OWASP's
recommended minimum, 19 MiB of memory, 2 passes, 1 lane. Hashes of the older scheme
(``scrypt$n$r$p$salt$hash``) are still checked; :func:`check_user_password` replaces one
(or an Argon2id hash with weaker parameters) with a fresh one at the next successful check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from portalflow.models import PortalUser

# OWASP Password Storage Cheat Sheet, Argon2id's first option: m=19 MiB, t=2, p=1. Chosen
# over RFC 9106's 64 MiB profile so a web process hashing a few passwords at once stays small.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
_ARGON2 = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)
ARGON2_PREFIX = "$argon2id$"
# The older scheme, verified only: scrypt 2**14 x 8 x 1 (16 MiB), below OWASP's minimum.
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_SCRYPT_MAXMEM
    )


def hash_password(password: str) -> str:
    """A salted Argon2id hash in PHC form: ``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>``."""
    return _ARGON2.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``: Argon2id, or the older scrypt scheme."""
    if not stored:
        return False
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    return _verify_scrypt(password, stored)


def password_needs_rehash(stored: str | None) -> bool:
    """Whether ``stored`` is not an Argon2id hash with today's parameters."""
    if not stored or not stored.startswith(ARGON2_PREFIX):
        return True
    try:
        return _ARGON2.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def check_user_password(session: Session, user: PortalUser, password: str) -> bool:
    """Check ``user``'s password; on success an outdated hash becomes Argon2id (flushes)."""
    if not verify_password(password, user.password_hash):
        return False
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return True


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)
