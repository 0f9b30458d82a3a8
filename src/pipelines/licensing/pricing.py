"""Slab pricing of portal user licences: pure functions over exact integer cents.

The price list is data: a tuple of :class:`Slab`, each the inclusive upper bound of users it
covers and its price per user per month. The standard list is $3 for users 1 - 1,000, $2
for users 1,001 - 10,000 and $1 for every user above 10,000; an org may carry its own list
in ``Org.price_slabs`` (``[{"up_to": 1000, "cents": 300}, ..., {"up_to": None, ...}]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from portalflow.pipelines.errors import InvalidInput

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Slab:
    """Users up to ``up_to`` (inclusive; None = no bound) cost ``cents`` per user per month."""

    up_to: int | None
    cents: int


STANDARD_SLABS: tuple[Slab, ...] = (Slab(1000, 300), Slab(10_000, 200), Slab(None, 100))


@dataclass(frozen=True)
class Quote:
    """A month's price for ``users`` licences, with one entry per slab that was used."""

    users: int
    monthly_cents: int
    # Each {"from": a, "to": b | None, "users": n, "cents_per_user": c, "cents": n * c}.
    slabs: list[dict[str, Any]]

    @property
    def monthly_usd(self) -> str:
        return cents_to_usd(self.monthly_cents)


def validate_slabs(slabs: Iterable[Slab]) -> tuple[Slab, ...]:
    """The slabs as a tuple, or InvalidInput naming the first problem.

    Bounds must be positive whole numbers in strictly ascending order, only the last slab is
    unbounded (and it must be), and every price is a whole, non-negative number of cents.
    """
    found = tuple(slabs)
    if not found:
        raise InvalidInput("a price list needs at least one slab")
    previous = 0
    for number, slab in enumerate(found, start=1):
        if not _is_int(slab.cents) or slab.cents < 0:
            raise InvalidInput(
                f"price slab {number}: cents {slab.cents!r} must be a whole number >= 0"
            )
        last = number == len(found)
        if slab.up_to is None:
            if not last:
                raise InvalidInput(
                    f"price slab {number}: only the last slab may be unbounded (up_to null)"
                )
            continue
        if not _is_int(slab.up_to) or slab.up_to < 1:
            raise InvalidInput(
                f"price slab {number}: up_to {slab.up_to!r} must be a whole number >= 1"
            )
        if slab.up_to <= previous:
            raise InvalidInput(
                f"price slab {number}: up_to {slab.up_to} must be above the previous "
                f"slab's {previous} (bounds ascend)"
            )
        if last:
            raise InvalidInput(
                f"price slab {number}: the last slab must be unbounded (up_to null), "
                f"not end at {slab.up_to}"
            )
        previous = slab.up_to
    return found


def slabs_from_data(data: Sequence[Mapping[str, Any]] | None) -> tuple[Slab, ...]:
    """An org's ``price_slabs`` JSON as validated slabs; None means the standard list."""
    if data is None:
        return STANDARD_SLABS
    if not isinstance(data, list | tuple):
        raise InvalidInput("price slabs must be a list of {up_to, cents} objects")
    slabs = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"price slab {number} must be an object with up_to and cents")
        unknown = set(item) - {"up_to", "cents"}
        if unknown:
            raise InvalidInput(
                f"price slab {number} has unknown keys: {', '.join(sorted(map(str, unknown)))}"
            )
        if "up_to" not in item or "cents" not in item:
            raise InvalidInput(f"price slab {number} needs both up_to and cents")
        slabs.append(Slab(up_to=item["up_to"], cents=item["cents"]))
    return validate_slabs(slabs)


def slabs_to_data(slabs: Iterable[Slab]) -> list[dict[str, Any]]:
    """The JSON form :func:`slabs_from_data` reads (for ``Org.price_slabs``)."""
    return [{"up_to": slab.up_to, "cents": slab.cents} for slab in validate_slabs(slabs)]


def quote(users: int, slabs: Iterable[Slab] = STANDARD_SLABS) -> Quote:
    """The monthly price of ``users`` licences: each user priced by the slab it falls in.

    500 -> $1,500; 5,000 -> $11,000 (1,000 x $3 + 4,000 x $2); 12,000 -> $23,000
    (3,000 + 18,000 + 2,000). Only slabs holding at least one user are listed.
    """
    if not _is_int(users) or users < 0:
        raise InvalidInput(f"users {users!r} must be a whole number >= 0")
    checked = validate_slabs(slabs)
    used: list[dict[str, Any]] = []
    total = 0
    below = 0  # users covered by the slabs before this one
    for slab in checked:
        if users <= below:
            break
        top = users if slab.up_to is None else min(users, slab.up_to)
        count = top - below
        cents = count * slab.cents
        used.append(
            {
                "from": below + 1,
                "to": slab.up_to,
                "users": count,
                "cents_per_user": slab.cents,
                "cents": cents,
            }
        )
        total += cents
        if slab.up_to is None:
            break
        below = slab.up_to
    return Quote(users=users, monthly_cents=total, slabs=used)


def cents_to_usd(cents: int) -> str:
    """Whole cents as dollars with two decimals, exactly: 2300000 -> ``"23000.00"``."""
    if not _is_int(cents):
        raise InvalidInput(f"cents {cents!r} must be a whole number")
    return format(Decimal(cents).scaleb(-2).quantize(_CENT), "f")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
