"""What every check shares: the context it runs in and the measured delta of one paired cell."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from audit import stats
from audit.claim import Claim
from audit.records import DEFAULT_VARIANT, Paired, Records

if TYPE_CHECKING:
    from audit.importers.probes import ProbeSets


# evaluate modules whose score is an error rate (lower is better).
LOWER_IS_BETTER_MODULES = frozenset({"wer", "cer", "ter", "mer", "wil", "perplexity"})


@dataclass(frozen=True)
class Cell:
    """The measured delta (treatment − baseline) of one variant × budget × scoring.

    ``inference`` is what every decision rests on: one test of delta = 0 and the interval that inverts it
    (:class:`audit.stats.PairedInference`: McNemar's test with continuity correction + Tango's interval for 0/1
    outcomes, the paired t joined with Hall's skewness-corrected t otherwise, the CR2 cluster-robust t on
    Bell–McCaffrey df when items share a passage). ``bootstrap`` (paired percentile bootstrap),
    ``clt`` (Miller 2024) and ``exact`` (exact McNemar for 0/1 outcomes) are shown beside it for comparison;
    no verdict rests on them.
    """

    variant: str
    budget: int | None
    scoring: str
    n: int
    baseline: float
    treatment: float
    inference: Any  # stats.PairedInference
    bootstrap: Any  # stats.Estimate | None
    clt: Any  # stats.Estimate
    exact: Any  # stats.TestResult | None
    binary: bool

    @property
    def delta(self):
        """The decision estimate: ``.value``, ``.interval`` (inverts ``test``), ``.se``, ``.method``."""
        return self.inference.estimate

    @property
    def interval(self):
        return self.inference.interval

    @property
    def test(self):
        return self.inference.test

    def row(self, **extra: Any) -> dict[str, Any]:
        iv = self.interval
        boot = self.bootstrap.interval if self.bootstrap is not None else None
        return {
            "variant": self.variant, "budget": self.budget, "scoring": self.scoring, "n": self.n,
            "baseline": self.baseline, "treatment": self.treatment, "delta": self.delta.value,
            "ci_low": iv.low, "ci_high": iv.high, "ci_method": iv.method,
            "boot_ci_low": boot.low if boot is not None else math.nan,
            "boot_ci_high": boot.high if boot is not None else math.nan,
            "clt_ci_low": self.clt.interval.low, "clt_ci_high": self.clt.interval.high,
            "exact_p": self.exact.p_value if self.exact is not None else math.nan,
            "p_value": self.test.p_value, "test": f"{self.test.method} ({self.test.alternative})", **extra,
        }


@dataclass(frozen=True)
class Perturbation:
    """One perturbation of the claimed setting (a larger budget, another scoring, an OOD prompt variant) and the
    test that decides whether it breaks the claim.

    ``change`` is the inference on the change of the gain, perturbed − claimed, both read in the claimed scoring's
    polarity (per item on shared items: paired; on a different item set: Welch). The claim is *broken* when the
    change is shown to be harmful and is material: H0 "change ≥ 0" is rejected by the one-sided test at α/2,
    Holm-adjusted over every perturbation of the audit (with one perturbation: the (1 − α) interval of the change
    lies wholly below 0), *and* the estimated change is beyond −margin (statistical and practical significance). A
    scoring on another scale
    (a continuous metric beside a 0/1 one) has no comparable change: it breaks the claim only when its own gain
    is significantly reversed (its interval excludes 0 on the harmful side), in its own polarity.
    """

    kind: str  # "budget" | "scoring" | "variant"
    label: str
    cell: Cell
    change: Any  # stats.PairedInference | None (None: scales not comparable)
    test: str  # "harmful change" | "reversal"
    p_raw: float
    p_holm: float
    family: int
    breaks: bool
    margin: float
    shared: int
    missing: tuple = ()
    # Every shared item's gain changed by exactly this much (no sampling variance: e.g. identical outputs).
    exact_change: float | None = None
    material: bool = True  # the estimated change is beyond −margin (always True for the reversal test)
    # The perturbed gain is shown to stay at or above the claimed one (H0 "gain < reported − tolerance" rejected at
    # α/2): whatever the change, the claim still holds there, so it cannot break it.
    above_claim: bool = False



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
    probe_sets: ProbeSets | None = None  # the claim's probe files, read by audit.importers.probes
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def score_bounds(self) -> tuple[float, float]:
        """The range every score lies in (`stats.score_range`): ``options.score_bounds`` when the claim declares
        it, else [0, 1] widened to every score in the records (all scorings)."""
        if "score_bounds" not in self._memo:
            declared = self.claim.options.score_bounds
            scores = (self.records.table["score"].to_numpy(dtype=float) if self.records is not None
                      else np.array([], dtype=float))
            self._memo["score_bounds"] = stats.score_range(scores, np.array([], dtype=float), declared, [])
        return self._memo["score_bounds"]

    @property
    def sign(self) -> int:
        """+1 when the claim is that treatment scores higher, −1 when lower is better."""
        return 1 if self.claim.claim.direction == "greater" else -1

    def polarity(self, scoring: str | None = None) -> int:
        """+1 when a higher score is better under ``scoring``, −1 when lower is better.

        The claimed scoring (and any lm-eval filter of the claimed metric) takes the claim's ``direction``.
        ``perturbations.higher_is_better`` overrides any scoring. Built-in scorers, claim-defined scorers (1 =
        correct) and evaluate modules are known (error-rate modules such as wer/cer/ter are lower-is-better). A score
        carried in the logs under any other name is read in the claimed metric's direction.
        """
        scoring = scoring or self.claimed_scoring
        override = self.claim.perturbations.higher_is_better.get(scoring or "")
        if override is not None:
            return 1 if override else -1
        if scoring is None or scoring == self.claimed_scoring:
            return self.sign
        from audit import scoring as scorers

        if scoring in self.claim.scorers or scoring in scorers.SCORERS:
            return 1
        if scoring.startswith(scorers.EVALUATE_PREFIX):
            module = scoring[len(scorers.EVALUATE_PREFIX):].strip().split("/")[-1].lower()
            return -1 if module in LOWER_IS_BETTER_MODULES else 1
        return self.sign

    def gain(self, delta: float, scoring: str | None = None) -> float:
        """``delta`` oriented so that positive means the treatment is better under ``scoring``."""
        return self.polarity(scoring) * delta

    def rng(self, salt: str) -> np.random.Generator:
        """A generator seeded from the audit seed and a stable salt, so results do not depend on check order."""
        salt_int = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:4], "little")
        return np.random.default_rng([self.seed, salt_int])

    def provenance(self, **extra: Any) -> dict[str, Any]:
        from audit import __version__

        return {"seed": self.seed, "resamples": self.resamples, "level": self.level, "alpha": self.alpha,
                "audit_version": __version__, **extra}

    def reported_delta(self) -> float | None:
        return self.claim.claim.reported.delta_or_difference()

    def reported_tolerance(self) -> float:
        """How far below the reported delta a measured one may lie before it is "smaller than reported": half a unit
        in the last reported digit (:meth:`audit.claim.Reported.delta_tolerance`), plus ``options.margin`` when the
        claim sets one (a shortfall within the materiality margin is not material)."""
        tol = self.claim.claim.reported.delta_tolerance(*self.written_places())
        if self.claim.options.margin is not None:
            tol += float(self.claim.options.margin)
        return tol

    def written_places(self) -> tuple[int | None, int | None]:
        """The decimals the reported numbers were written to in the claim file (table, CI): ``audit.claim``."""
        if "places" not in self._memo:
            from audit.claim import written_places

            self._memo["places"] = written_places(self.claim)
        return self._memo["places"]

    def degenerate(self) -> dict:
        """scoring → :class:`audit.degenerate.Degenerate`: scorings that give every item of both arms one score."""
        if "degenerate" not in self._memo:
            from audit.degenerate import degenerate_scorings

            self._memo["degenerate"] = degenerate_scorings(self.records.table) if self.records is not None else {}
        return self._memo["degenerate"]

    @property
    def margin(self) -> float:
        """The materiality margin (metric units): see :meth:`margin_and_source`. NaN when it cannot be set."""
        return self.margin_and_source()[0]

    def margin_and_source(self) -> tuple[float, str]:
        """``options.margin``, else half the larger of the reported and the measured gain at the claimed setting
        (each in the claimed direction; a gain understated in the paper must not make its own perturbations look
        material), else half of whichever exists. NaN when none does."""
        if self.claim.options.margin is not None:
            return float(self.claim.options.margin), "options.margin"
        rep = self.reported_delta()
        c = self.cell(self.claimed_budget) if self.records is not None else None
        meas = c.delta.value if c is not None and math.isfinite(c.delta.value) else None
        gains = {"reported": self.sign * rep if rep is not None else None,
                 "measured": self.sign * meas if meas is not None else None}
        positive = {k: v for k, v in gains.items() if v is not None and v > 0}
        if positive:
            which = max(positive, key=positive.get)
            if len(positive) == 2:
                return positive[which] / 2.0, f"half the larger of the reported and measured gain (the {which})"
            return positive[which] / 2.0, ("half the reported delta" if which == "reported"
                                           else "half the measured delta at the claimed setting")
        if rep is not None and rep != 0:
            return abs(rep) / 2.0, "half the reported delta"
        if meas is not None and meas != 0:
            return abs(meas) / 2.0, "half the measured delta at the claimed setting"
        return math.nan, "no margin: no options.margin, reported delta or measured delta"

    def null_margin(self) -> tuple[float, str]:
        """The margin a "shown to be near zero" (TOST) statement may use: one fixed before looking at the measured
        delta (``options.margin``, else half the reported delta). NaN when there is none."""
        if self.claim.options.margin is not None:
            return float(self.claim.options.margin), "options.margin"
        rep = self.reported_delta()
        if rep is not None and rep != 0:
            return abs(rep) / 2.0, "half the reported delta"
        return math.nan, "no margin fixed in advance"

    def perturbations(self) -> list[Perturbation]:
        """Every perturbation of the claimed setting in this audit, each with its break test, Holm-adjusted over
        the whole family (budgets larger than the claimed one, other scorings, OOD prompt variants)."""
        if "perturbations" in self._memo:
            return self._memo["perturbations"]
        out: list[Perturbation] = []
        rec, cb, sc = self.records, self.claimed_budget, self.claimed_scoring
        if rec is not None and self.cell(cb) is not None:
            cands = [("budget", f"{b} tokens", b, sc, DEFAULT_VARIANT) for b in rec.budgets()
                     if cb is not None and b > cb]
            # A degenerate scoring (one score for every item of both arms) measures nothing: never a perturbation.
            cands += [("scoring", f"scoring {s!r}", cb, s, DEFAULT_VARIANT) for s in rec.scorings()
                      if s != sc and s not in self.degenerate()]
            cands += [("variant", f"prompt variant {v!r}", cb, sc, v) for v in rec.variants() if v != DEFAULT_VARIANT]
            raw = [self._perturbation(*c) for c in cands]
            raw = [r for r in raw if r is not None]
            adj = stats.holm_adjusted([r["p_raw"] for r in raw])
            half = self.alpha / 2.0
            for r, pa in zip(raw, adj):
                out.append(Perturbation(**r, p_holm=float(pa), family=len(raw),
                                        breaks=bool(math.isfinite(pa) and pa < half and r["material"]
                                                    and not r["above_claim"])))
        self._memo["perturbations"] = out
        return out

    def _perturbation(self, kind: str, label: str, budget, scoring: str, variant: str) -> dict | None:
        cell = self.cell(budget, scoring, variant)
        if cell is None:
            return None
        p0 = self.records.paired(self.claimed_scoring, self.claimed_budget)
        p1 = self.records.paired(scoring, budget, variant)
        pol0, pol1 = self.sign, self.polarity(scoring)
        margin = self.margin
        m = margin if math.isfinite(margin) else 0.0
        # The two cells joined on item id (Records.joined): the shared items, and those only one cell has.
        both = self.records.joined([(self.claimed_scoring, self.claimed_budget, DEFAULT_VARIANT),
                                    (scoring, budget, variant)])
        s0, s1 = pol0 * both.take(0, "gain"), pol1 * both.take(1, "gain")
        shared, missing = both.item_ids, both.missing
        comparable = kind != "scoring" or (cell.binary and self.cell(self.claimed_budget).binary)
        change = None
        exact = None
        material = True
        if comparable:
            if len(shared) >= 2:
                lo, hi = self.score_bounds
                change = stats.paired_inference(s0, s1, level=self.level, clusters=both.clusters,
                                                outcomes="scores", score_bounds=(lo - hi, hi - lo))
            else:
                change = stats.welch_inference(pol0 * (p0.treatment - p0.baseline),
                                               pol1 * (p1.treatment - p1.baseline), level=self.level)
            # H1: the gain shrinks (change < 0); the break also needs the estimate beyond −margin (material).
            p_raw = change.p_value(0.0, "less")
            material = bool(math.isfinite(change.value) and change.value < -m)
            test = "harmful change"
            e = s1 - s0 if len(shared) >= 2 else np.array([])
            if e.size and np.ptp(e) == 0 and len(shared) == p0.n == p1.n:
                # The same change on every item (identical outputs): a fact, not an estimate.
                exact = float(e[0])
                p_raw = 0.0 if exact < 0 else 1.0
                material = exact < -m
        else:
            # Another scale: only a significant reversal in the scoring's own polarity is comparable.
            p_raw = cell.inference.p_value(0.0, "less" if pol1 > 0 else "greater")
            test = "reversal"
        above = comparable and self._above_claim(cell, pol1)
        return {"kind": kind, "label": label, "cell": cell, "change": change, "test": test, "exact_change": exact,
                "material": material, "above_claim": above,
                "p_raw": float(p_raw) if p_raw is not None else math.nan, "margin": m, "shared": int(len(shared)),
                "missing": missing[:20]}

    def _above_claim(self, cell: Cell, pol: int) -> bool:
        """The perturbed gain is shown to be at least the reported one (less its rounding tolerance): H0 "gain <
        reported − tolerance" rejected one-sided at α/2."""
        rep = self.reported_delta()
        if rep is None or self.sign * rep <= 0 or cell.n < 2:
            return False
        floor = abs(rep) - self.claim.claim.reported.delta_tolerance(*self.written_places())
        p = cell.inference.p_value(pol * floor, "greater" if pol > 0 else "less")
        return bool(p is not None and math.isfinite(p) and p < self.alpha / 2.0)

    def judge(self, pt: Perturbation) -> tuple[str, str, str, str, str]:
        """(code, outcome, severity, impact, sentence) for one perturbation, by the rule in `Perturbation`."""
        pol = self.polarity(pt.cell.scoring)
        gain = pol * pt.cell.delta.value
        reversed_sig = pt.cell.inference.p_value(0.0, "less" if pol > 0 else "greater") < self.alpha / 2.0
        alpha_half = self.alpha / 2.0
        if pt.above_claim and not pt.breaks:
            return ("above_claim", "pass", "info", "none",
                    f"the gain under {pt.label} is shown to stay at or above the reported "
                    f"{fmt_delta(self.reported_delta())}")
        if pt.breaks:
            if reversed_sig:
                return ("reverses", "flag", "critical", "fragile", f"the gain reverses under {pt.label}")
            if gain <= 0:
                return ("vanishes", "flag", "critical", "fragile", f"the gain vanishes under {pt.label}")
            return ("shrinks", "flag", "major", "fragile",
                    f"the gain shrinks by more than the margin ±{pt.margin:.3g} under {pt.label}")
        if pt.exact_change is not None and abs(pt.exact_change) <= pt.margin:
            return ("holds", "pass", "info", "none",
                    f"the gain holds under {pt.label} (every item's gain changes by exactly "
                    f"{pt.exact_change:+.3g})")
        if pt.change is not None and pt.change.interval.ok and pt.margin > 0 \
                and pt.change.p_value(-pt.margin, "greater") < alpha_half \
                and pt.change.p_value(pt.margin, "less") < alpha_half:
            return ("holds", "pass", "info", "none",
                    f"the gain holds under {pt.label} (equivalent within ±{pt.margin:.3g}, TOST)")
        if reversed_sig:
            return ("reversed_not_shown", "info", "info", "none",
                    f"the delta under {pt.label} is significantly reversed on its own, but the change is not shown "
                    f"beyond the margin after Holm adjustment")
        if pt.change is None and gain > 0 and pt.cell.inference.p_value(0.0, "greater" if pol > 0 else "less") < alpha_half:
            return ("holds", "pass", "info", "none", f"the gain holds under {pt.label}")
        return ("not_shown_to_change", "info", "info", "none",
                f"the gain is not shown to change under {pt.label}")

    def change_text(self, pt: Perturbation) -> str:
        """The change of the gain with its interval and the Holm-adjusted test, for a finding's detail."""
        if pt.change is None:
            return (f"{pt.label} measures on another scale; its own delta {fmt_delta(pt.cell.delta.value)} "
                    f"{fmt_ci(pt.cell.interval)}, one-sided reversal p = {pt.p_raw:.3g}, Holm p = {pt.p_holm:.3g} "
                    f"over {pt.family} perturbation(s).")
        ch = pt.change
        if pt.exact_change is not None:
            return (f"Change of the gain, {pt.label} − claimed: exactly {pt.exact_change:+.3g} on every one of the "
                    f"{pt.shared} items (no sampling variance); margin ±{pt.margin:.3g}.")
        return (f"Change of the gain, {pt.label} − claimed: {fmt_delta(ch.value)} {fmt_ci(ch.interval)} "
                f"({ch.method} on {pt.shared} shared items); H0 change ≥ 0: one-sided p = {pt.p_raw:.3g}, Holm "
                f"p = {pt.p_holm:.3g} over {pt.family} perturbation(s); a break needs Holm p < α/2 = "
                f"{self.alpha / 2:g} and a change beyond the margin −{pt.margin:.3g} "
                f"({'it is' if pt.material else 'it is not'}).")

    def perturbation_stat(self, pt: Perturbation) -> dict[str, Any]:
        ch = pt.change
        return {"perturbation": pt.kind, "label": pt.label, "budget": pt.cell.budget, "scoring": pt.cell.scoring,
                "variant": pt.cell.variant, "delta": pt.cell.delta.value, "ci_low": pt.cell.interval.low,
                "ci_high": pt.cell.interval.high, "p_value": pt.cell.test.p_value,
                "change": ch.value if ch is not None else None,
                "change_ci_low": ch.interval.low if ch is not None else None,
                "change_ci_high": ch.interval.high if ch is not None else None,
                "change_method": ch.method if ch is not None else None, "break_test": pt.test,
                "margin": pt.margin, "p_break": pt.p_raw, "p_break_holm": pt.p_holm, "family_size": pt.family,
                "breaks": pt.breaks, "above_claim": pt.above_claim, "shared_items": pt.shared, "missing_items": list(pt.missing)}

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
        c = measure(p, self.rng(f"cell/{variant}/{budget}/{scoring}"), self.resamples, self.level,
                    self.score_bounds)
        self._memo[key] = c
        return c


# The bootstrap shown beside a cell's decision draws at most this many item indices (continuous scores: the full
# resamples up to 5,000 items, fewer above, none above 50,000 items, where the paired CLT interval beside is its
# large-sample equivalent); 0/1 and other few-valued scores are resampled in full at any n (multinomial counts).
BOOTSTRAP_MAX_DRAWS = 50_000_000


def measure(p: Paired, rng: np.random.Generator, resamples: int, level: float,
            score_bounds: tuple[float, float] | None = None) -> Cell:
    b, t = p.baseline, p.treatment
    clusters = p.clusters
    inference = stats.paired_inference(b, t, level=level, clusters=clusters, score_bounds=score_bounds)
    clt = stats.paired_clt_delta(b, t, level=level, clusters=clusters)
    boot = exact = None
    if clusters is None:
        # Shown beside the decision interval; with clusters the item bootstrap would understate the uncertainty.
        boot = stats.paired_bootstrap_delta(b, t, rng, resamples=resamples, level=level,
                                            max_draws=BOOTSTRAP_MAX_DRAWS)
        if p.binary:
            exact = stats.mcnemar_paired(b, t, alternative="two-sided")
    return Cell(p.variant, p.budget, p.scoring, p.n, _mean(b), _mean(t), inference, boot, clt, exact, p.binary)


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
