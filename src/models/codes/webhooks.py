"""Why a CRM webhook delivery failed, or an endpoint's URL was refused."""

from __future__ import annotations

from enum import StrEnum


class WebhookFailureCode(StrEnum):
    """Why one attempt to deliver a webhook failed."""

    HTTP_ERROR = "http_error"  # the endpoint answered, but not 2xx
    REDIRECT_REFUSED = "redirect_refused"  # it answered 3xx: redirects are never followed
    TIMEOUT = "timeout"
    CONNECTION_FAILED = "connection_failed"  # refused, reset, DNS failure, TLS failure
    ADDRESS_REFUSED = "address_refused"  # the host resolves to an address the policy refuses
    LEASE_EXPIRED = "lease_expired"  # its worker stopped mid-delivery; sent again


WEBHOOK_FAILURE_DESCRIPTIONS: dict[WebhookFailureCode, str] = {
    WebhookFailureCode.HTTP_ERROR: "The endpoint answered with a status other than 2xx.",
    WebhookFailureCode.REDIRECT_REFUSED: (
        "The endpoint answered with a redirect; redirects are not followed: give the final URL."
    ),
    WebhookFailureCode.TIMEOUT: "The endpoint did not answer in time.",
    WebhookFailureCode.CONNECTION_FAILED: "No connection (DNS, refused, reset or TLS failure).",
    WebhookFailureCode.ADDRESS_REFUSED: (
        "The host resolved to a private, loopback or link-local address, which is refused "
        "unless PORTALFLOW_WEBHOOK_ALLOWED_NETWORKS allows it."
    ),
    WebhookFailureCode.LEASE_EXPIRED: (
        "The worker delivering it stopped before recording the answer; delivered again."
    ),
}


class WebhookUrlRefusal(StrEnum):
    """Why an endpoint URL is refused (at save time, or at send time once resolved)."""

    NOT_HTTP = "url_not_http"  # only http:// and https://
    NO_HOST = "url_without_host"
    CREDENTIALS = "url_with_credentials"  # user:password@ would be logged and sent around
    BAD_PORT = "url_bad_port"
    UNRESOLVABLE = "url_unresolvable"
    PRIVATE_ADDRESS = "url_private_address"
    TOO_LONG = "url_too_long"
