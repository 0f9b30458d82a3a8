"""Amazon SNS message signatures: the canonical string, the certificate allow-list, a cache.

Pure functions and one small cache; no web framework here. The HTTP handler calls
:func:`verify_sns_message` before it stores anything.

Example::

    loader = CachedCertificateLoader()
    verify_sns_message(json.loads(body), certificate_loader=loader)  # or SnsSignatureError

The string to sign follows the AWS SNS documentation ("Verifying the signatures of Amazon
SNS messages"): for each key, in the documented order, the line ``Key\\n`` then
``Value\\n``; ``Subject`` only when the notification has one.

A valid signature is not enough: :func:`check_sns_message` then refuses a message from a
topic not configured (``PORTALFLOW_SNS_TOPIC_ARNS``; none configured refuses every one) and
one dated outside the replay window (:data:`MAX_MESSAGE_AGE` old, or
:data:`MAX_CLOCK_SKEW` ahead, by its signed ``Timestamp``). Inside the window a replay is
caught by its stored MessageId, which retention keeps for at least :data:`REPLAY_HORIZON`;
after that the window itself refuses it, so no table of seen ids has to outlive the events.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The keys signed for each message type, in the order AWS documents.
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    "Notification": NOTIFICATION_KEYS,
    "SubscriptionConfirmation": CONFIRMATION_KEYS,
    "UnsubscribeConfirmation": CONFIRMATION_KEYS,
}
OPTIONAL_KEYS = frozenset({"Subject"})

# SignatureVersion "1" is SHA1withRSA, "2" is SHA256withRSA.
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

# An SNS endpoint host: sns.<region>.amazonaws.com, or .amazonaws.com.cn in China.
_SNS_HOST = r"sns\.[a-z]{2}(?:-[a-z]+)+-[0-9]+\.amazonaws\.com(?:\.cn)?"
SNS_HOST_PATTERN = re.compile(_SNS_HOST)
# The whole certificate URL: https, an SNS host, no user-info, no port, no query, a .pem path.
CERTIFICATE_URL_PATTERN = re.compile(rf"https://{_SNS_HOST}/[A-Za-z0-9._\-/]*\.pem")

DEFAULT_FETCH_TIMEOUT = 5.0
MAX_CERTIFICATE_BYTES = 64 * 1024
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

TOPIC_ARNS_VARIABLE = "PORTALFLOW_SNS_TOPIC_ARNS"
# SNS signs the time it published the message; a retry carries the same time, so this also
# bounds how long an outage of ours may last before SNS's retries start being refused.
MAX_MESSAGE_AGE = timedelta(hours=1)
MAX_CLOCK_SKEW = timedelta(minutes=5)
# How long a stored SNS event must outlive its arrival for its MessageId to refuse replays
# until the window does (retention never deletes a younger one).
REPLAY_HORIZON = MAX_MESSAGE_AGE + MAX_CLOCK_SKEW


class SnsSignatureError(ValueError):
    """The message is not a correctly signed SNS message; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CertificateUnavailable(SnsSignatureError):
    """The certificate could not be fetched just now: not a forgery, so worth a retry."""


class SnsMessageRefused(ValueError):
    """A correctly signed SNS message we do not take (other topic, stale); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_sns_message(
    message: Mapping[str, Any], *, topic_arns: frozenset[str], now: datetime
) -> None:
    """Refuse a verified message from a topic not in ``topic_arns`` or outside the window.

    Call it after :func:`verify_sns_message`: it trusts ``TopicArn`` and ``Timestamp`` to be
    the signed strings. An empty ``topic_arns`` refuses every message.
    """
    if not topic_arns:
        raise SnsMessageRefused(
            f"SNS webhooks accept no topic: set {TOPIC_ARNS_VARIABLE} to the ARNs of the"
            " topics whose messages are taken"
        )
    topic = message.get("TopicArn")
    if topic not in topic_arns:
        raise SnsMessageRefused(f"topic {topic!r} is not one of {TOPIC_ARNS_VARIABLE}")
    published = parse_sns_timestamp(message.get("Timestamp"))
    if published < now - MAX_MESSAGE_AGE:
        raise SnsMessageRefused(
            f"the message is dated {published.isoformat()}, more than"
            f" {_minutes(MAX_MESSAGE_AGE)} minutes ago: refused as a possible replay"
        )
    if published > now + MAX_CLOCK_SKEW:
        raise SnsMessageRefused(
            f"the message is dated {published.isoformat()}, more than"
            f" {_minutes(MAX_CLOCK_SKEW)} minutes ahead of our clock"
        )


def parse_sns_timestamp(value: object) -> datetime:
    """The aware datetime of an SNS ``Timestamp`` (ISO 8601, e.g. ``2024-05-01T12:00:00.000Z``)."""
    if not isinstance(value, str):
        raise SnsMessageRefused("the Timestamp is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SnsMessageRefused(f"the Timestamp {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise SnsMessageRefused(f"the Timestamp {value!r} has no time zone")
    return parsed.astimezone(UTC)


def parse_topic_arns(text: str) -> frozenset[str]:
    """The comma-separated SNS topic ARNs of ``text`` (ValueError naming a malformed one)."""
    arns = frozenset(part.strip() for part in text.split(",") if part.strip())
    for arn in sorted(arns):
        if TOPIC_ARN_PATTERN.fullmatch(arn) is None:
            raise ValueError(
                f"{TOPIC_ARNS_VARIABLE}: {arn!r} is not an SNS topic ARN"
                " (arn:aws:sns:<region>:<account>:<topic>)"
            )
    return arns


TOPIC_ARN_PATTERN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:sns:[a-z]{2}(?:-[a-z]+)+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}"
    r"(?:\.fifo)?"
)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def allowed_certificate_url(url: str) -> bool:
    """True only for ``https://sns.<region>.amazonaws.com[.cn]/<path>.pem``.

    >>> allowed_certificate_url("https://sns.us-east-1.amazonaws.com/SNS-x.pem")
    True
    >>> allowed_certificate_url("https://sns.us-east-1.amazonaws.com@evil.com/x.pem")
    False
    """
    if not isinstance(url, str) or ".." in url:
        return False
    return CERTIFICATE_URL_PATTERN.fullmatch(url) is not None


def allowed_subscribe_url(url: str, *, allow_local: bool = False) -> bool:
    """True for an ``https`` URL on an SNS host (any path and query), nothing else.

    ``allow_local`` (tests only) also admits ``http(s)://127.0.0.1|localhost|[::1]``.
    """
    if not isinstance(url, str) or any(ch in url for ch in "\r\n\t "):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or parts.hostname is None:
        return False
    host = parts.hostname
    if allow_local and host in LOCAL_HOSTS and parts.scheme in ("http", "https"):
        return True
    return (
        parts.scheme == "https"
        and port is None
        and parts.netloc == host
        and SNS_HOST_PATTERN.fullmatch(host) is not None
    )


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical bytes SNS signed for this message (SnsSignatureError if malformed)."""
    message_type = message.get("Type")
    keys = SIGNED_KEYS.get(message_type) if isinstance(message_type, str) else None
    if keys is None:
        raise SnsSignatureError(f"unsupported SNS message type {message_type!r}")
    lines: list[str] = []
    for key in keys:
        value = message.get(key)
        if value is None and key in OPTIONAL_KEYS:
            continue
        if not isinstance(value, str):
            raise SnsSignatureError(f"SNS message field {key} is missing or not a string")
        lines.append(f"{key}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify_sns_message(
    message: Mapping[str, Any], *, certificate_loader: Callable[[str], bytes]
) -> None:
    """Return quietly if ``message`` carries a valid SNS signature, else SnsSignatureError.

    ``certificate_loader(SigningCertURL)`` returns the PEM certificate; the URL is checked
    against :func:`allowed_certificate_url` before the loader is ever called.
    """
    if not isinstance(message, Mapping):
        raise SnsSignatureError("an SNS message must be a JSON object")
    version = message.get("SignatureVersion")
    algorithm = HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise SnsSignatureError(f"unsupported SignatureVersion {version!r}")
    cert_url = message.get("SigningCertURL")
    if not isinstance(cert_url, str) or not allowed_certificate_url(cert_url):
        raise SnsSignatureError("SigningCertURL is not an allowed SNS certificate URL")
    signature_text = message.get("Signature")
    if not isinstance(signature_text, str) or not signature_text:
        raise SnsSignatureError("the Signature is missing")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except (binascii.Error, ValueError):
        raise SnsSignatureError("the Signature is not valid base64") from None
    signed = string_to_sign(message)
    public_key = _public_key(certificate_loader(cert_url))
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SnsSignatureError("the signature does not match the message") from None


def _public_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SnsSignatureError("the signing certificate is not a PEM certificate") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsSignatureError("the signing certificate does not hold an RSA key")
    return key


def fetch_url(url: str, timeout: float = DEFAULT_FETCH_TIMEOUT) -> bytes:
    """GET ``url`` with a timeout and a size cap; the default certificate fetch."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read(MAX_CERTIFICATE_BYTES + 1)
    if len(body) > MAX_CERTIFICATE_BYTES:
        raise SnsSignatureError("the signing certificate is too large")
    return bytes(body)


class CachedCertificateLoader:
    """Fetch signing certificates from allowed SNS URLs only, caching each for a while.

    ``fixed_certificate`` is a TEST HOOK ONLY: when set, it is returned for every URL and
    nothing is fetched, so locally signed messages verify. Never set it in production:
    anyone holding the matching private key could then forge SES events.
    """

    def __init__(
        self,
        fetch: Callable[[str], bytes] = fetch_url,
        ttl_seconds: float = 3600,
        *,
        fixed_certificate: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._fixed = fixed_certificate
        self._clock = clock
        self._cache: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        if self._fixed is not None:
            return self._fixed
        if not allowed_certificate_url(url):
            raise SnsSignatureError("SigningCertURL is not an allowed SNS certificate URL")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            pem = self._fetch(url)
        except SnsSignatureError:
            raise
        except Exception as exc:  # network trouble: refuse now, SNS will retry
            raise CertificateUnavailable(f"cannot fetch the signing certificate: {exc}") from None
        with self._lock:
            self._cache[url] = (now, pem)
        return pem
