"""What a portal user may see and do: criteria-based exposure and permission sets.

Which rule lives where (seeds crm-portals-criteria-exposure, creator-portal-permissions):

- :mod:`.catalogue`: each org's modules and fields (type, picklist options, lookup
  target, PII/ePHI flags), which every rule is checked against.
- :mod:`.nodes`: a rule's conditions (lookup link, match by value, match by field,
  all/any) and which operators fit which field type.
- :mod:`.rules`: parsing a rule when saved (unknown module or field, an operator not
  fitting the type, a value not fitting its field); :mod:`.satisfiable`: a rule that can
  never match.
- :mod:`.exposures`: per user type, the primary module (always visible), related and
  public (view only) modules, record and field permissions.
- :mod:`.permission_sets`: named profiles overriding the type's defaults, and who holds
  which; :mod:`.config`: catalogue changes re-checked against both, the one import of the
  CLI and the HTTP API.
- :mod:`.policy`: one user's effective permissions in one module (set overrides type).
- :mod:`.compiler`: one module's rules as one SQLAlchemy Core query (PostgreSQL, SQLite),
  and the indexes they need.
- :mod:`.records`: pages and single records with fields filtered; writes where allowed.
- :mod:`.explain`: which rule decided a record's visibility, and why.
"""
