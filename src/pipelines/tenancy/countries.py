"""An org's country of registration: a valid ISO code, and the data centre it lives in.

The data centre follows the country unless the org says otherwise (the README's "Data
centre by country" table); any other country lives in ``us``. SMS invitations are for
Indian orgs only (``INDIA``).
"""

from __future__ import annotations

import re

import pycountry

from portalflow.models import DataCentre
from portalflow.pipelines.errors import InvalidInput

INDIA = "IN"

# The EU and the rest of the EEA, with the UK and Switzerland.
_EUROPE = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    "IS", "LI", "NO", "GB", "CH",
})  # fmt: skip
# The data centre an org lives in unless it says otherwise, by country of registration
# (the README's "Data centre by country" table); any other country: us.
DATA_CENTRE_COUNTRIES: dict[DataCentre, frozenset[str]] = {
    DataCentre.IN: frozenset({"IN"}),
    DataCentre.EU: _EUROPE,
    DataCentre.AU: frozenset({"AU", "NZ"}),
    DataCentre.JP: frozenset({"JP"}),
    DataCentre.CN: frozenset({"CN"}),
    DataCentre.CA: frozenset({"CA"}),
}
DEFAULT_DATA_CENTRE = DataCentre.US


def default_data_centre(country: str) -> DataCentre:
    """The data centre of an org registered in ``country`` (ISO 3166-1 alpha-2)."""
    code = country.strip().upper()
    for data_centre, countries in DATA_CENTRE_COUNTRIES.items():
        if code in countries:
            return data_centre
    return DEFAULT_DATA_CENTRE


def validate_country(country: str) -> str:
    """The upper-cased ISO 3166-1 alpha-2 code, or InvalidInput naming what is wrong."""
    code = country.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", code) or pycountry.countries.get(alpha_2=code) is None:
        raise InvalidInput(
            f"country {country!r} is not an ISO 3166-1 two-letter country code (e.g. IN, DE, US)"
        )
    return code
