"""Degenerate scorings: a scoring that gives every item of both arms the same score measures nothing.

The usual cause is a target no output can match (a whole worked solution where the final answer belongs, a letter
target under a numeric extractor), which scores every item 0. Such a scoring cannot show a gain, a loss or a
change of one, so it is a problem of that scoring — said by ``audit validate`` and flagged by the scoring check —
and never evidence: it does not enter the family of perturbations that can make a claim fragile.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Degenerate:
    scoring: str
    value: float  # the one score every item of both arms has
    rows: int  # record rows (arms × items × budgets × variants) under this scoring

    def sentence(self) -> str:
        return f"scoring {self.scoring!r} gives every item of both arms the score {self.value:g} ({self.rows} records)"


def degenerate_scorings(table: pd.DataFrame) -> dict[str, Degenerate]:
    """scoring → :class:`Degenerate` for every scoring whose scores are one value over both arms and every cell.
    A table with one arm only, or a scoring with no finite score, is not judged."""
    if table is None or not len(table) or table["arm"].nunique() < 2:
        return {}
    g = table.groupby("scoring", sort=False, observed=True)["score"].agg(["min", "max", "count"])
    arms = table.groupby("scoring", sort=False, observed=True)["arm"].nunique()
    out = {}
    for scoring, row in g.iterrows():
        if row["count"] > 0 and row["min"] == row["max"] and arms.get(scoring, 0) >= 2:
            out[str(scoring)] = Degenerate(str(scoring), float(row["min"]), int(row["count"]))
    return out
