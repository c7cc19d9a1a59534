"""The confidence interval type every statistic returns, and the conversion of results to plain Python.

Below `audit.stats` and `audit.sequential`, which both build intervals, so that neither imports the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np


def plain(x: Any) -> Any:
    """Convert numpy scalars/arrays and nested containers to plain Python (NaN kept as float('nan'))."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()]
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if hasattr(x, "to_dict") and callable(x.to_dict):
        return x.to_dict()
    return x


def to_dict(obj: Any) -> dict:
    """A dataclass as plain Python (`plain` of each field)."""
    return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}


@dataclass(frozen=True)
class Interval:
    """A confidence interval. NaN bounds with ``reason`` set when it cannot be computed."""

    low: float
    high: float
    level: float
    method: str
    reason: str | None = None

    @classmethod
    def nan(cls, level: float, method: str, reason: str) -> "Interval":
        return cls(math.nan, math.nan, float(level), method, reason)

    @property
    def ok(self) -> bool:
        """Both bounds finite."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, x: float) -> bool:
        """low <= x <= high; False when the interval is not `ok` (a NaN interval contains nothing)."""
        return self.ok and self.low <= x <= self.high

    def to_dict(self) -> dict:
        return to_dict(self)


def fmt_delta(x: float | None) -> str:
    """A delta as the report writes it: signed, 3 decimals ("n/a" when missing or not finite)."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.3f}"


def fmt_ci(iv: Interval | None) -> str:
    """An interval as the report writes it: [low, high], signed, 3 decimals ("[n/a]" when not computable)."""
    if iv is None or not iv.ok:
        return "[n/a]"
    return f"[{iv.low:+.3f}, {iv.high:+.3f}]"


def excludes_zero(iv: Interval) -> bool:
    """The interval lies wholly above or wholly below 0."""
    return bool(iv.ok and (iv.low > 0 or iv.high < 0))
