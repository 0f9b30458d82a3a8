"""SNS signature verification: the canonical string, both versions, the URL allow-list."""

from __future__ import annotations

import pytest

from portalflow.pipelines.delivery.sns import (
    CachedCertificateLoader,
    CertificateUnavailable,
    SnsSignatureError,
    allowed_certificate_url,
    allowed_subscribe_url,
    string_to_sign,
    verify_sns_message,
)

from ..sns_signing import (
    TEST_CERT_URL,
    new_signing_key,
    notification,
    shared_signing_key,
    sign_sns,
    subscription_confirmation,
)

SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    "&TopicArn=arn:aws:sns:us-east-1:123456789012:ses-events&Token=abc"
)


def loader(url: str) -> bytes:
    return shared_signing_key().certificate_pem


def signed(message: dict, version: str = "1") -> dict:
    return sign_sns(message, shared_signing_key().private_key, version)


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_verifies(version: str) -> None:
    message = signed(notification("m-1", {"eventType": "Bounce"}, subject="hi"), version)
    verify_sns_message(message, certificate_loader=loader)


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_subscription_confirmation_verifies(version: str) -> None:
    message = signed(subscription_confirmation("m-2", SUBSCRIBE_URL), version)
    verify_sns_message(message, certificate_loader=loader)


def test_an_unsubscribe_confirmation_verifies() -> None:
    message = subscription_confirmation("m-3", SUBSCRIBE_URL)
    message["Type"] = "UnsubscribeConfirmation"
    verify_sns_message(signed(message), certificate_loader=loader)


def test_the_string_to_sign_follows_the_documented_order() -> None:
    message = notification("id", {}, subject=None)
    message["Message"] = "hello"
    message["Timestamp"] = "2024-05-01T12:00:00.000Z"
    assert string_to_sign(message) == (
        b"Message\nhello\nMessageId\nid\nTimestamp\n2024-05-01T12:00:00.000Z\n"
        b"TopicArn\narn:aws:sns:us-east-1:123456789012:ses-events\nType\nNotification\n"
    )
    message["Subject"] = "s"
    assert b"MessageId\nid\nSubject\ns\nTimestamp\n" in string_to_sign(message)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", '{"eventType": "Delivery"}'),
        ("Subject", "changed"),
        ("MessageId", "m-other"),
        ("TopicArn", "arn:aws:sns:us-east-1:999999999999:other"),
    ],
)
def test_a_tampered_field_is_refused(field: str, value: str) -> None:
    message = signed(notification("m-1", {"eventType": "Bounce"}, subject="hi"))
    message[field] = value
    with pytest.raises(SnsSignatureError, match="does not match"):
        verify_sns_message(message, certificate_loader=loader)


def test_an_added_subject_is_refused() -> None:
    message = signed(notification("m-1", {"eventType": "Bounce"}))
    message["Subject"] = "sneaked in"
    with pytest.raises(SnsSignatureError):
        verify_sns_message(message, certificate_loader=loader)


def test_a_message_signed_with_another_key_is_refused() -> None:
    other = new_signing_key()
    message = sign_sns(notification("m-1", {}), other.private_key)
    with pytest.raises(SnsSignatureError, match="does not match"):
        verify_sns_message(message, certificate_loader=loader)


def test_a_version_1_signature_claimed_as_version_2_is_refused() -> None:
    message = signed(notification("m-1", {}), "1")
    message["SignatureVersion"] = "2"
    with pytest.raises(SnsSignatureError):
        verify_sns_message(message, certificate_loader=loader)


@pytest.mark.parametrize("version", ["3", "", None, 1])
def test_an_unknown_signature_version_is_refused(version: object) -> None:
    message = signed(notification("m-1", {}))
    message["SignatureVersion"] = version
    with pytest.raises(SnsSignatureError, match="SignatureVersion"):
        verify_sns_message(message, certificate_loader=loader)


@pytest.mark.parametrize("signature", ["", "not base64 !!", None])
def test_a_missing_or_garbled_signature_is_refused(signature: object) -> None:
    message = signed(notification("m-1", {}))
    message["Signature"] = signature
    with pytest.raises(SnsSignatureError):
        verify_sns_message(message, certificate_loader=loader)


def test_an_unknown_type_is_refused() -> None:
    message = signed(notification("m-1", {}))
    message["Type"] = "Surprise"
    with pytest.raises(SnsSignatureError, match="type"):
        verify_sns_message(message, certificate_loader=loader)


def test_a_certificate_that_is_not_pem_is_refused() -> None:
    message = signed(notification("m-1", {}))
    with pytest.raises(SnsSignatureError, match="PEM"):
        verify_sns_message(message, certificate_loader=lambda url: b"garbage")


DISALLOWED_CERT_URLS = [
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
    "https://evil.com/sns.us-east-1.amazonaws.com/x.pem",
    "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
    "https://sns.us-east-1.amazonaws.com:8443/x.pem",
    "https://sns.us-east-1.amazonaws.com/x.txt",
    "https://sns.us-east-1.amazonaws.com/x.pem?x=1",
    "https://sns.us-east-1.amazonaws.com/x.pem#frag",
    "https://sns.us-east-1.amazonaws.com/../x.pem",
    "https://sqs.us-east-1.amazonaws.com/x.pem",
    "https://user@sns.us-east-1.amazonaws.com/x.pem",
    "https://sns.us-east-1.amazonaws.com/x.pem\n",
    "https://sns.us-east-1.amazonaws.com",
    "",
]


@pytest.mark.parametrize("url", DISALLOWED_CERT_URLS)
def test_disallowed_certificate_urls(url: str) -> None:
    assert not allowed_certificate_url(url)


@pytest.mark.parametrize(
    "url",
    [
        TEST_CERT_URL,
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc123.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
    ],
)
def test_allowed_certificate_urls(url: str) -> None:
    assert allowed_certificate_url(url)


@pytest.mark.parametrize("url", DISALLOWED_CERT_URLS[:5])
def test_a_message_naming_a_disallowed_certificate_is_refused_before_loading(url: str) -> None:
    message = sign_sns(notification("m-1", {}), shared_signing_key().private_key, cert_url=url)

    def must_not_load(url: str) -> bytes:
        raise AssertionError("the loader was called")

    with pytest.raises(SnsSignatureError, match="SigningCertURL"):
        verify_sns_message(message, certificate_loader=must_not_load)


def test_subscribe_urls() -> None:
    assert allowed_subscribe_url(SUBSCRIBE_URL)
    assert not allowed_subscribe_url("http://sns.us-east-1.amazonaws.com/?Action=x")
    assert not allowed_subscribe_url("https://sns.us-east-1.amazonaws.com@evil.com/?x")
    assert not allowed_subscribe_url("https://evil.com/?sns.us-east-1.amazonaws.com")
    assert not allowed_subscribe_url("http://127.0.0.1:8000/confirm")
    assert allowed_subscribe_url("http://127.0.0.1:8000/confirm", allow_local=True)
    assert not allowed_subscribe_url("http://10.0.0.1/confirm", allow_local=True)


class CountingFetch:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return shared_signing_key().certificate_pem


def test_the_cached_loader_fetches_once_per_url() -> None:
    fetch = CountingFetch()
    cached = CachedCertificateLoader(fetch)
    other = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-2.pem"
    for _ in range(3):
        cached(TEST_CERT_URL)
        cached(other)
    assert fetch.urls == [TEST_CERT_URL, other]
    message = signed(notification("m-1", {}))
    verify_sns_message(message, certificate_loader=cached)
    assert fetch.urls == [TEST_CERT_URL, other]


def test_the_cached_loader_fetches_again_after_the_ttl() -> None:
    fetch = CountingFetch()
    now = [0.0]
    cached = CachedCertificateLoader(fetch, ttl_seconds=60, clock=lambda: now[0])
    cached(TEST_CERT_URL)
    now[0] = 59.0
    cached(TEST_CERT_URL)
    now[0] = 61.0
    cached(TEST_CERT_URL)
    assert fetch.urls == [TEST_CERT_URL, TEST_CERT_URL]


@pytest.mark.parametrize("url", DISALLOWED_CERT_URLS)
def test_the_cached_loader_refuses_disallowed_urls_without_fetching(url: str) -> None:
    fetch = CountingFetch()
    with pytest.raises(SnsSignatureError):
        CachedCertificateLoader(fetch)(url)
    assert fetch.urls == []


def test_a_failed_fetch_is_reported_as_unavailable_and_not_cached() -> None:
    calls: list[str] = []

    def failing(url: str) -> bytes:
        calls.append(url)
        raise OSError("connection refused")

    cached = CachedCertificateLoader(failing)
    for _ in range(2):
        with pytest.raises(CertificateUnavailable):
            cached(TEST_CERT_URL)
    assert len(calls) == 2


def test_the_fixed_certificate_test_hook_never_fetches() -> None:
    fetch = CountingFetch()
    pem = shared_signing_key().certificate_pem
    cached = CachedCertificateLoader(fetch, fixed_certificate=pem)
    assert cached("https://anything.example/x.pem") == pem
    assert fetch.urls == []
