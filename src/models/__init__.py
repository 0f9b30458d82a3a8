"""The model layer: tables, enums, sessions and migrations. Imports nothing else of ours."""

from .access import ApiKey, ScheduledRun
from .base import Base
from .bulk import BulkActionRefusal, BulkChunk, BulkRun
from .delivery import ChannelPause, ProviderEvent, Suppression
from .enums import (
    EMAIL_TEMPLATE_KINDS,
    OPEN_INVITATION_STATUSES,
    REASON_DESCRIPTIONS,
    SIGN_IN_REFUSAL_DESCRIPTIONS,
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
    SessionEndReason,
    SessionState,
    SignInMethod,
    SignInRefusal,
    SmsEncoding,
    SmsTemplateKind,
    VerificationStatus,
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
from .signin import PortalSession
from .sms import DltTemplate, SmsTemplate, SmsTemplateMapping
from .templates import EmailTemplate
from .types import utcnow

__all__ = [
    "CLIENT_PORTAL_MODULE",
    "CLIENT_PORTAL_NAME",
    "CONSENT_BASIS",
    "EMAIL_TEMPLATE_KINDS",
    "OPEN_INVITATION_STATUSES",
    "REASON_DESCRIPTIONS",
    "RECORD_VALUE_COLUMNS",
    "SIGN_IN_REFUSAL_DESCRIPTIONS",
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
    "PortalSession",
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
    "SessionEndReason",
    "SessionState",
    "SignInMethod",
    "SignInRefusal",
    "SmsEncoding",
    "SmsTemplate",
    "SmsTemplateKind",
    "SmsTemplateMapping",
    "Suppression",
    "VerificationStatus",
    "describe_failure",
    "make_engine",
    "make_session_factory",
    "session_scope",
    "utcnow",
]
