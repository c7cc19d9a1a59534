"""What every check shares: the context it runs in and the measured delta of one paired cell."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit import stats
from audit.claim import Claim
from audit.records import DEFAULT_VARIANT, Paired, Records


@dataclass(frozen=True)
class Cell:
    """The measured delta (treatment − baseline) of one variant × budget × scoring, with its CI and test."""

    variant: str
    budget: int | None
    scoring: str
    n: int
    baseline: float
    treatment: float
    delta: Any  # stats.Estimate (paired bootstrap, the primary interval)
    clt: Any  # stats.Estimate (paired CLT SE, Miller 2024)
    test: Any  # stats.TestResult (McNemar exact for 0/1 outcomes, paired t otherwise)
    binary: bool

    @property
    def interval(self):
        return self.delta.interval

    def row(self, **extra: Any) -> dict[str, Any]:
        iv = self.delta.interval
        return {
            "variant": self.variant, "budget": self.budget, "scoring": self.scoring, "n": self.n,
            "baseline": self.baseline, "treatment": self.treatment, "delta": self.delta.value,
            "ci_low": iv.low, "ci_high": iv.high, "ci_method": iv.method,
            "clt_ci_low": self.clt.interval.low, "clt_ci_high": self.clt.interval.high,
            "p_value": self.test.p_value, "test": f"{self.test.method} ({self.test.alternative})", **extra,
        }


@dataclass(frozen=True)
class Context:
    claim: Claim
    records: Records | None
    seed: int
    resamples: int
    level: float
    alpha: float
    power: float
    claimed_budget: int | None
    claimed_scoring: str | None
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def sign(self) -> int:
        """+1 when the claim is that treatment scores higher, −1 when lower is better."""
        return 1 if self.claim.claim.direction == "greater" else -1

    def rng(self, salt: str) -> np.random.Generator:
        """A generator seeded from the audit seed and a stable salt, so results do not depend on check order."""
        salt_int = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:4], "little")
        return np.random.default_rng([self.seed, salt_int])

    def provenance(self, **extra: Any) -> dict[str, Any]:
        from audit import __version__

        return {"seed": self.seed, "resamples": self.resamples, "level": self.level, "alpha": self.alpha,
                "audit_version": __version__, **extra}

    def cell(self, budget: int | None, scoring: str | None = None, variant: str = DEFAULT_VARIANT) -> Cell | None:
        """The measured cell, computed once per audit; None when the records have no such cell."""
        scoring = scoring or self.claimed_scoring
        key = (variant, budget, scoring)
        if key in self._memo:
            return self._memo[key]
        if self.records is None or not self.records.has(variant, budget, scoring):
            self._memo[key] = None
            return None
        p = self.records.paired(scoring, budget, variant)
        c = measure(p, self.rng(f"cell/{variant}/{budget}/{scoring}"), self.resamples, self.level)
        self._memo[key] = c
        return c


def measure(p: Paired, rng: np.random.Generator, resamples: int, level: float) -> Cell:
    b, t = p.baseline, p.treatment
    clusters = p.clusters
    if clusters is not None:
        # Items share passages/templates: resampling items as if independent understates the uncertainty, so the
        # primary interval and the test use the cluster-robust SE (Liang–Zeger with C/(C−1); Miller 2024).
        clt = stats.paired_clt_delta(b, t, level=level, clusters=clusters)
        return Cell(p.variant, p.budget, p.scoring, p.n, _mean(b), _mean(t), clt, clt, _cluster_z(clt), p.binary)
    delta = stats.paired_bootstrap_delta(b, t, rng, resamples=resamples, level=level)
    clt = stats.paired_clt_delta(b, t, level=level)
    if p.binary:
        test = stats.mcnemar_paired(b, t, alternative="two-sided")
    else:
        test = stats.paired_ttest(b, t, alternative="two-sided")
    return Cell(p.variant, p.budget, p.scoring, p.n, _mean(b), _mean(t), delta, clt, test, p.binary)


def _cluster_z(est) -> "stats.TestResult":
    """Two-sided z-test of delta = 0 with the cluster-robust SE (normal reference, as Miller 2024)."""
    from scipy.stats import norm

    if not (est.se > 0):
        return stats.TestResult(math.nan, math.nan, "cluster-robust-z", "two-sided", est.n, est.reason)
    z = est.value / est.se
    return stats.TestResult(z, float(2 * norm.sf(abs(z))), "cluster-robust-z", "two-sided", est.n, None,
                            {"clusters": est.details.get("clusters"), "se_cluster": est.se})


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def fmt_delta(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.3f}"


def fmt_ci(iv) -> str:
    if iv is None or not iv.ok:
        return "[n/a]"
    return f"[{iv.low:+.3f}, {iv.high:+.3f}]"


def excludes_zero(iv) -> bool:
    return bool(iv.ok and (iv.low > 0 or iv.high < 0))


def item_evidence(p: Paired, mask: np.ndarray, k: int = 5, extra: dict[str, np.ndarray] | None = None) -> list[dict]:
    """The first ``k`` items selected by ``mask``, with both arms' outputs (for finding cards)."""
    idx = np.flatnonzero(mask)[:k]
    out = []
    f = p.frame
    for i in idx:
        row = {"item_id": str(f["item_id"].iat[i]), "budget": p.budget, "scoring": p.scoring,
               "baseline_score": float(f["score_b"].iat[i]), "treatment_score": float(f["score_t"].iat[i]),
               "baseline_output": _clip(f["text_b"].iat[i]), "treatment_output": _clip(f["text_t"].iat[i])}
        for name, arr in (extra or {}).items():
            row[name] = arr[i]
        out.append(row)
    return out


def _clip(s: Any, n: int = 600) -> str | None:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return None
    s = str(s)
    return s if len(s) <= n else s[:n] + " …"
