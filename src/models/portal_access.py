"""What portal users may see: field catalogues, module exposures, permission sets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JSONDocument
from .enums import FieldType
from .types import UTCDateTime, enum_column, utcnow


class ModuleField(Base):
    """One field of a CRM module as an org declares it: its type and its privacy flags.

    A module exists for access rules once it has a catalogue; a record's value is read
    from the record's column of that name (``email``, ``first_name``...) or its extra fields.
    """

    __tablename__ = "module_fields"
    __table_args__ = (UniqueConstraint("org_id", "module", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    module: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    label: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[FieldType] = mapped_column(enum_column(FieldType))
    # A picklist's allowed values; None for other types.
    options: Mapped[list[str] | None] = mapped_column(JSONDocument)
    # A lookup's target module; None for other types.
    lookup_module: Mapped[str | None] = mapped_column(String(100))
    pii: Mapped[bool] = mapped_column(Boolean, default=False)
    ephi: Mapped[bool] = mapped_column(Boolean, default=False)


class ModuleExposure(Base):
    """A module a user type's portal users may reach, with the type's default permissions.

    ``rule`` is the stored form of the lookup links and criteria (see
    :mod:`portalflow.pipelines.access.rules`); ``field_access`` maps field name to a
    :class:`~portalflow.models.enums.FieldAccess` value where it differs from the default.
    """

    __tablename__ = "module_exposures"
    __table_args__ = (UniqueConstraint("user_type_id", "module"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    user_type_id: Mapped[int] = mapped_column(ForeignKey("portal_user_types.id"))
    module: Mapped[str] = mapped_column(String(100))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    can_create: Mapped[bool] = mapped_column(Boolean, default=False)
    can_view: Mapped[bool] = mapped_column(Boolean, default=True)
    can_edit: Mapped[bool] = mapped_column(Boolean, default=False)
    can_edit_shared: Mapped[bool] = mapped_column(Boolean, default=False)
    can_delete: Mapped[bool] = mapped_column(Boolean, default=False)
    field_access: Mapped[dict[str, str]] = mapped_column(JSONDocument, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PermissionSet(Base):
    """A named profile of one user type; what it says overrides the type's defaults.

    ``modules`` maps a module to its overrides: any of ``create``, ``view``, ``edit``,
    ``edit_shared``, ``delete`` (booleans) and ``fields`` (field name -> access level).
    """

    __tablename__ = "permission_sets"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    user_type_id: Mapped[int] = mapped_column(ForeignKey("portal_user_types.id"))
    name: Mapped[str] = mapped_column(String(100))
    show_pii: Mapped[bool] = mapped_column(Boolean, default=False)
    show_ephi: Mapped[bool] = mapped_column(Boolean, default=False)
    modules: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PermissionSetAssignment(Base):
    """The one permission set a portal user holds (none: the type's defaults)."""

    __tablename__ = "permission_set_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    portal_user_id: Mapped[int] = mapped_column(ForeignKey("portal_users.id"), unique=True)
    permission_set_id: Mapped[int] = mapped_column(ForeignKey("permission_sets.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
