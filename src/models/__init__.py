"""The model layer: tables, enums, sessions and migrations. Imports nothing else of ours."""

from .access import ApiKey, ScheduledRun
from .base import Base
from .bulk import BulkActionRefusal, BulkChunk, BulkRun
from .codes import (
    OUTCOME_DESCRIPTIONS,
    REASON_DESCRIPTIONS,
    SEND_FAILURE_DESCRIPTIONS,
    AcceptanceProblem,
    CrmEventCode,
    OutcomeCode,
    PasswordProblem,
    ProblemCode,
    ReasonCode,
    Refusal,
    RefusalCode,
    SendFailureCode,
    TokenProblem,
    describe_failure,
)
from .delivery import ChannelPause, ProviderEvent, Suppression
from .enums import (
    OPEN_INVITATION_STATUSES,
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
    RecordAccess,
    SmsEncoding,
    SmsTemplateKind,
    VerificationStatus,
)
from .events import CrmEvent
from .idempotency import IdempotencyKey
from .invitations import Invitation, SendReceipt
from .licences import LicenceAlert, LicencePurchase, LicenceReport
from .ops import OpsSample
from .org import CLIENT_PORTAL_MODULE, CLIENT_PORTAL_NAME, CrmUser, Org, Portal, PortalUserType
from .portal_users import PortalUser
from .records import CONSENT_BASIS, RECORD_VALUE_COLUMNS, CrmRecord, RecordValues
from .session import make_engine, make_session_factory, session_scope
from .sms import DltTemplate, SmsTemplate, SmsTemplateMapping
from .templates import EmailTemplate
from .types import utcnow

__all__ = [
    "CLIENT_PORTAL_MODULE",
    "CLIENT_PORTAL_NAME",
    "CONSENT_BASIS",
    "OPEN_INVITATION_STATUSES",
    "OUTCOME_DESCRIPTIONS",
    "REASON_DESCRIPTIONS",
    "RECORD_VALUE_COLUMNS",
    "SEND_FAILURE_DESCRIPTIONS",
    "AcceptanceProblem",
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
    "CrmEventCode",
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
    "OpsSample",
    "Org",
    "OutcomeClass",
    "OutcomeCode",
    "PasswordProblem",
    "Portal",
    "PortalUser",
    "PortalUserStatus",
    "PortalUserType",
    "ProblemCode",
    "ProviderEvent",
    "ProviderEventStatus",
    "ReasonCode",
    "RecordAccess",
    "RecordValues",
    "Refusal",
    "RefusalCode",
    "ScheduledRun",
    "SendFailureCode",
    "SendReceipt",
    "SmsEncoding",
    "SmsTemplate",
    "SmsTemplateKind",
    "SmsTemplateMapping",
    "Suppression",
    "TokenProblem",
    "VerificationStatus",
    "describe_failure",
    "make_engine",
    "make_session_factory",
    "session_scope",
    "utcnow",
]
