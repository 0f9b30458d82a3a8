"""Why a portal access rule was refused when saved, or a portal user's request refused."""

from __future__ import annotations

from enum import StrEnum


class AccessCode(StrEnum):
    """Why an access rule was refused at save, or a portal user's request was refused."""

    # Refused when saved.
    UNKNOWN_MODULE = "unknown_module"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_FIELD = "invalid_field"  # a catalogue entry breaks a rule (name, type, options)
    OPERATOR_NOT_FOR_TYPE = "operator_not_for_type"
    INVALID_VALUE = "invalid_value"  # a value that does not fit its field or operator
    NOT_A_LOOKUP = "not_a_lookup"  # a lookup link through a field that is no lookup to it
    RULE_NEVER_MATCHES = "rule_never_matches"
    INVALID_RULE = "invalid_rule"  # not a rule at all (shape, empty group, unknown key)
    PERMISSION_NOT_ALLOWED = "permission_not_allowed"  # e.g. edit on a public module
    PII_HIDDEN = "pii_hidden"  # a PII/ePHI field shown while the set hides them
    FIELD_IN_USE = "field_in_use"  # a catalogue change would break a saved rule
    SET_OF_OTHER_TYPE = "set_of_other_type"  # a permission set given to another type's user
    # Refused to a portal user.
    USER_NOT_ACTIVE = "user_not_active"
    MODULE_NOT_EXPOSED = "module_not_exposed"
    RECORD_NOT_VISIBLE = "record_not_visible"
    ACTION_NOT_PERMITTED = "action_not_permitted"
    FIELD_NOT_EDITABLE = "field_not_editable"


ACCESS_DESCRIPTIONS: dict[AccessCode, str] = {
    AccessCode.UNKNOWN_MODULE: "The module has no field catalogue in this org.",
    AccessCode.UNKNOWN_FIELD: "The field is not in the module's catalogue.",
    AccessCode.INVALID_FIELD: "A field of the catalogue is malformed.",
    AccessCode.OPERATOR_NOT_FOR_TYPE: "The operator does not fit the field's type.",
    AccessCode.INVALID_VALUE: "The value does not fit the field's type or the operator.",
    AccessCode.NOT_A_LOOKUP: "The field is not a lookup to the user type's primary module.",
    AccessCode.RULE_NEVER_MATCHES: "No record could ever satisfy the rule.",
    AccessCode.INVALID_RULE: "The rule is not well formed.",
    AccessCode.PERMISSION_NOT_ALLOWED: "The permission cannot be given on this module.",
    AccessCode.PII_HIDDEN: "PII/ePHI fields stay hidden unless the set shows them on purpose.",
    AccessCode.FIELD_IN_USE: "A saved rule or permission uses the field.",
    AccessCode.SET_OF_OTHER_TYPE: "The permission set belongs to another user type.",
    AccessCode.USER_NOT_ACTIVE: "The portal user is not confirmed (or is deactivated/removed).",
    AccessCode.MODULE_NOT_EXPOSED: "The module is not exposed to the portal user.",
    AccessCode.RECORD_NOT_VISIBLE: "The record does not exist or the rules do not expose it.",
    AccessCode.ACTION_NOT_PERMITTED: "The permissions do not allow this action on the record.",
    AccessCode.FIELD_NOT_EDITABLE: "The field is hidden or read only for the portal user.",
}
