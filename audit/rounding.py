"""The rounding tolerance of a reported number: half a unit in its last reported digit.

Every reported number the audit compares with lies on the [0, 1] scale (rates, deltas of rates, p-values), so:

* A number written without decimals (0, 1) is read to ``INTEGER_PLACES`` = 2 decimals (±0.005), not ±0.5: "±0.5" on
  a [0, 1] quantity would let a reported rate of 0 match any k/n ≤ 0.5 and a reported p of 1 match any p ≥ 0.5.
* Trailing zeros never widen the tolerance (``Decimal.normalize`` writes 20 as 2E+1, which would read ±5).
* YAML turns "0.30" into 0.3, so a table's precision is the most decimals among its numbers (``table_places``).
"""

from __future__ import annotations

import math
from decimal import Decimal

# A number written without decimals (0 or 1) is read to this many decimals: ±0.5 on [0, 1] cannot fail.
INTEGER_PLACES = 2


def decimals(x: float) -> int:
    """Decimal places as written (0.15 → 2, 0.3 → 1); floats from YAML keep their shortest repr."""
    exp = Decimal(repr(float(x))).normalize().as_tuple().exponent
    return max(0, -int(exp))


def half_unit(x: float, places: int | None = None) -> float:
    """Half a unit in the last reported place. ``places`` overrides the decimals read off the float (the precision
    the other numbers of the same table were reported to)."""
    d = places if places is not None else decimals(x)
    return 0.5 * 10 ** (-(d if d > 0 else INTEGER_PLACES))


def rounds_to(value: float, reported: float, places: int | None = None) -> bool:
    return math.isfinite(value) and abs(value - reported) <= half_unit(reported, places) + 1e-12


def table_places(*values) -> int | None:
    """The precision a table of rates was reported to: the most decimals among its float numbers. None when no
    number has decimals (each is then read to ``INTEGER_PLACES``)."""
    ds = [decimals(v) for v in values if isinstance(v, float)]
    return max(ds) if ds and max(ds) > 0 else None
