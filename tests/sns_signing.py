"""Sign SNS messages like Amazon does, with a self-signed test certificate."""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from portalflow.pipelines.delivery.sns import string_to_sign

TEST_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-events"


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    certificate_pem: bytes


def new_signing_key() -> SigningKey:
    """A fresh RSA key and a self-signed certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key, certificate.public_bytes(serialization.Encoding.PEM))


@functools.cache
def shared_signing_key() -> SigningKey:
    """One key and certificate per test session (RSA key generation is slow)."""
    return new_signing_key()


def sign_sns(
    message: dict[str, Any],
    private_key: rsa.RSAPrivateKey,
    version: str = "1",
    cert_url: str = TEST_CERT_URL,
) -> dict[str, Any]:
    """A copy of ``message`` with SignatureVersion, SigningCertURL and a valid Signature."""
    signed = dict(message, SignatureVersion=version, SigningCertURL=cert_url)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = private_key.sign(string_to_sign(signed), padding.PKCS1v15(), algorithm)
    signed["Signature"] = base64.b64encode(signature).decode("ascii")
    return signed


def sns_timestamp(when: datetime | None = None) -> str:
    """An SNS ``Timestamp`` (ISO 8601, milliseconds, ``Z``): now unless ``when`` is given."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def notification(
    message_id: str,
    inner: dict[str, Any],
    subject: str | None = None,
    *,
    timestamp: datetime | None = None,
    topic_arn: str = TOPIC_ARN,
) -> dict[str, Any]:
    """An unsigned SNS Notification carrying an SES event as its JSON Message."""
    message: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": json.dumps(inner),
        "Timestamp": sns_timestamp(timestamp),
    }
    if subject is not None:
        message["Subject"] = subject
    return message


def subscription_confirmation(
    message_id: str, subscribe_url: str, *, topic_arn: str = TOPIC_ARN
) -> dict[str, Any]:
    """An unsigned SNS SubscriptionConfirmation."""
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id,
        "Token": "2336412f37fb687f5d51e6e2425c464de",
        "TopicArn": topic_arn,
        "Message": f"You have chosen to subscribe to the topic {topic_arn}.",
        "SubscribeURL": subscribe_url,
        "Timestamp": sns_timestamp(),
    }
