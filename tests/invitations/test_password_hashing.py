"""Passwords: Argon2id at OWASP's parameters; older scrypt hashes verified, then upgraded."""

from __future__ import annotations

import base64
import hashlib
import secrets

from argon2 import PasswordHasher, Type
from sqlalchemy.orm import Session

from portalflow.models import PortalUser, PortalUserStatus
from portalflow.pipelines.invitations import password_hashes

from ..factories import client_portal, make_org, make_record

PASSWORD = "correct horse battery staple"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def legacy_scrypt_hash(password: str) -> str:
    """A hash as the previous release stored it: scrypt 2**14 x 8 x 1."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${_b64(salt)}${_b64(digest)}"


def user_with_hash(session: Session, stored: str) -> PortalUser:
    org = make_org(session)
    record = make_record(session, org, "pw-1")
    user = PortalUser(
        org_id=org.id,
        user_type_id=client_portal(session, org).id,
        record_id=record.id,
        email="pw@example.org",
        status=PortalUserStatus.CONFIRMED,
        password_hash=stored,
    )
    session.add(user)
    session.flush()
    return user


def test_new_hashes_are_argon2id_with_owasp_parameters() -> None:
    stored = password_hashes.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert password_hashes.verify_password(PASSWORD, stored)
    assert not password_hashes.verify_password(PASSWORD + "!", stored)
    assert not password_hashes.password_needs_rehash(stored)


def test_an_old_scrypt_hash_still_verifies_and_needs_a_rehash() -> None:
    old = legacy_scrypt_hash(PASSWORD)
    assert password_hashes.verify_password(PASSWORD, old)
    assert not password_hashes.verify_password("wrong password here", old)
    assert password_hashes.password_needs_rehash(old)


def test_the_next_successful_check_upgrades_an_old_hash(session: Session) -> None:
    old = legacy_scrypt_hash(PASSWORD)
    user = user_with_hash(session, old)

    assert not password_hashes.check_user_password(session, user, "wrong password here")
    assert user.password_hash == old  # a failed check changes nothing

    assert password_hashes.check_user_password(session, user, PASSWORD)
    session.commit()
    session.expire_all()
    upgraded = session.get_one(PortalUser, user.id).password_hash
    assert upgraded is not None and upgraded.startswith("$argon2id$")
    assert password_hashes.verify_password(PASSWORD, upgraded)

    assert password_hashes.check_user_password(session, user, PASSWORD)
    assert session.get_one(PortalUser, user.id).password_hash == upgraded  # no needless rehash


def test_a_weaker_argon2_hash_is_upgraded_too(session: Session) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)
    user = user_with_hash(session, weak.hash(PASSWORD))
    assert password_hashes.password_needs_rehash(user.password_hash)
    assert password_hashes.check_user_password(session, user, PASSWORD)
    assert user.password_hash is not None and "m=19456,t=2,p=1" in user.password_hash
