"""The model layer: tables, enums, sessions and migrations. Imports nothing else of ours."""

from .access import ApiKey, ScheduledRun
from .base import Base
from .bulk import BulkActionRefusal, BulkChunk, BulkRun
from .delivery import ChannelPause, ProviderEvent, Suppression
from .enums import (
    OPEN_INVITATION_STATUSES,
    REASON_DESCRIPTIONS,
    BulkAction,
    BulkRunStatus,
    Channel,
    ChunkStatus,
    CrmEventKind,
    CrmEventStatus,
    DataCentre,
    DltTemplateStatus,
    Edition,
    EmailKind,
    InvitationPreference,
    InvitationStatus,
    OutcomeClass,
    PortalUserStatus,
    ProviderEventStatus,
    ReasonCode,
    RecordAccess,
    SendFailureCode,
    SmsEncoding,
    SmsTemplateKind,
    VerificationStatus,
    WebhookDeliveryStatus,
    WebhookEventType,
    WebhookFailureCode,
    WebhookUrlRefusal,
    describe_failure,
)
from .events import CrmEvent
from .idempotency import IdempotencyKey
from .invitations import Invitation, SendReceipt
from .licences import LicenceAlert, LicencePurchase, LicenceReport
from .org import CLIENT_PORTAL_MODULE, CLIENT_PORTAL_NAME, CrmUser, Org, Portal, PortalUserType
from .portal_users import PortalUser
from .records import CONSENT_BASIS, RECORD_VALUE_COLUMNS, CrmRecord, RecordValues
from .session import make_engine, make_session_factory, session_scope
from .sms import DltTemplate, SmsTemplate, SmsTemplateMapping
from .templates import EmailTemplate
from .types import utcnow
from .webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "CLIENT_PORTAL_MODULE",
    "CLIENT_PORTAL_NAME",
    "CONSENT_BASIS",
    "OPEN_INVITATION_STATUSES",
    "REASON_DESCRIPTIONS",
    "RECORD_VALUE_COLUMNS",
    "ApiKey",
    "Base",
    "BulkAction",
    "BulkActionRefusal",
    "BulkChunk",
    "BulkRun",
    "BulkRunStatus",
    "Channel",
    "ChannelPause",
    "ChunkStatus",
    "CrmEvent",
    "CrmEventKind",
    "CrmEventStatus",
    "CrmRecord",
    "CrmUser",
    "DataCentre",
    "DltTemplate",
    "DltTemplateStatus",
    "Edition",
    "EmailKind",
    "EmailTemplate",
    "IdempotencyKey",
    "Invitation",
    "InvitationPreference",
    "InvitationStatus",
    "LicenceAlert",
    "LicencePurchase",
    "LicenceReport",
    "Org",
    "OutcomeClass",
    "Portal",
    "PortalUser",
    "PortalUserStatus",
    "PortalUserType",
    "ProviderEvent",
    "ProviderEventStatus",
    "ReasonCode",
    "RecordAccess",
    "RecordValues",
    "ScheduledRun",
    "SendFailureCode",
    "SendReceipt",
    "SmsEncoding",
    "SmsTemplate",
    "SmsTemplateKind",
    "SmsTemplateMapping",
    "Suppression",
    "VerificationStatus",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookEndpoint",
    "WebhookEventType",
    "WebhookFailureCode",
    "WebhookUrlRefusal",
    "describe_failure",
    "make_engine",
    "make_session_factory",
    "session_scope",
    "utcnow",
]
