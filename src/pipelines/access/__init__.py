"""What a portal user may see and do: criteria-based exposure and permission sets.

Which rule lives where (seeds crm-portals-criteria-exposure, creator-portal-permissions):

- :mod:`.catalogue`: each org's modules and fields (type, picklist options, lookup
  target, PII/ePHI flags), which every rule is checked against.
- :mod:`.rules`: lookup links, match by value, match by field, and/or; validation when
  saved (unknown module or field, operator not fitting the type, a rule that never matches).
- :mod:`.config`: exposures per user type (primary always visible, related, public view
  only), record and field permissions, permission sets and their assignment.
- :mod:`.policy`: one user's effective permissions in one module (set overrides type).
- :mod:`.compiler`: one module's rules as one SQLAlchemy Core query (PostgreSQL, SQLite),
  and the indexes they need.
- :mod:`.records`: pages and single records with fields filtered; writes where allowed.
- :mod:`.explain`: which rule decided a record's visibility, and why.
"""
