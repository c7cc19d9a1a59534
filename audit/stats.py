"""Statistics for `audit`: pure, seeded functions that checks compose.

Ground rules (DESIGN.md, "Statistical ground rules"; reference/statistics.md for oracle values and traps):

- Every function is pure: no I/O, no global random state. Anything random takes a ``numpy.random.Generator``.
- Results are frozen dataclasses (`Interval`, `TestResult`, `Estimate`), never bare tuples.
- A value that cannot be computed (n < 2, an empty group, zero variance) is NaN with a ``reason``; never a
  zero-width interval, never 0 as a stand-in.
- scipy / statsmodels implementations are used wherever one exists; docstrings say so, and say when a formula is
  hand-written because no library offers it. Heavy imports (scipy.stats, statsmodels) happen inside functions so
  ``import audit.stats`` stays cheap.
- Alternatives are ``"two-sided" | "greater" | "less"``; ``"greater"`` always means the treatment / first group
  is larger (p1 > p2, treatment > baseline, positive scores > negative scores).
- Invalid input (k > n, a negative count, arms of different length, a level outside (0, 1)) raises
  `audit.errors.InputError` carrying every problem found, not the first.

Conventions for two-group counts: group 1 has k1 successes out of n1, group 2 has k2 out of n2. For paired 0/1
outcomes: b = pairs where baseline fails and treatment passes (treatment-only wins), c = pairs where baseline
passes and treatment fails (baseline-only wins).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from audit.errors import InputError, Problem
from audit.intervals import Interval
from audit.intervals import plain as _plain
from audit.intervals import to_dict as _to_dict

__all__ = [
    "ALTERNATIVES",
    "Interval",
    "TestResult",
    "Estimate",
    "wilson",
    "newcombe_diff",
    "fisher_exact",
    "fisher_all",
    "boschloo_exact",
    "barnard_exact",
    "ztest_2prop",
    "chi2_2x2",
    "mcnemar_exact",
    "mcnemar_paired",
    "mcnemar_chi2",
    "paired_bootstrap_delta",
    "paired_clt_delta",
    "clustered_se",
    "clustered_cr2",
    "paired_ttest",
    "welch_ttest",
    "mde_paired",
    "mde_unpaired",
    "sd_diff_from_discordance",
    "sample_size_paired",
    "holm",
    "benjamini_hochberg",
    "p_value_variants",
    "auc_mann_whitney",
    "auc_delong",
    "hanley_mcneil_se",
    "structural_components",
    "delong_covariance",
    "AucComparison",
    "delong_paired",
    "delong_unpaired",
    "exact_match_from_token_accuracy",
    "edit_distance_from_token_accuracy",
    "PairedInference",
    "paired_inference",
    "skew_t_inference",
    "score_inference",
    "tango_interval",
    "holm_adjusted",
    "mde_mcnemar",
    "fisher_power",
    "mde_fisher",
    "welch_inference",
    "mcnemar_power",
    "unpaired_score_inference",
    "anytime_inference",
    "ANYTIME_METHOD",
]

ALTERNATIVES = ("two-sided", "greater", "less")
NAN = float("nan")

# statsmodels spells one-sided alternatives differently from scipy.
_SM_ALT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}

# Bootstrap: draw multinomial counts over the distinct paired differences (exact shortcut, see
# paired_bootstrap_delta) when there are at most this many distinct values and they are few relative to n.
_GROUPED_MAX_DISTINCT = 256
# Bootstrap index path: at most this many gathered indices in memory at once (~32 MiB of int64).
_CHUNK_ELEMENTS = 1 << 22
# The fewest resamples a capped bootstrap keeps (paired_bootstrap_delta(max_draws=...)); below it, it is skipped.
BOOTSTRAP_MIN_RESAMPLES = 1000


# --------------------------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class TestResult:
    """A hypothesis test. ``p_value`` is NaN with ``reason`` set when the test cannot be computed."""

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    method: str
    alternative: str
    n: int
    reason: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.p_value)

    def significant(self, alpha: float = 0.05) -> bool:
        """p < alpha; False when the p-value could not be computed."""
        return self.ok and self.p_value < alpha

    def to_dict(self) -> dict:
        return _to_dict(self)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval and standard error, plus provenance (seed, resamples)."""

    value: float
    interval: Interval
    se: float
    n: int
    method: str
    seed: int | None = None
    resamples: int | None = None
    reason: str | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _to_dict(self)


# --------------------------------------------------------------------------------------------------------------
# Validation helpers (collect every problem, then raise once)


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise InputError(problems)


def _as_count(name: str, value: Any, problems: list[Problem]) -> int:
    if isinstance(value, (bool, np.bool_)):
        problems.append(
            Problem(
                "a count must be a whole number, not a boolean", field=name, value=value, fix="pass an integer count"
            )
        )
        return 0
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        v = int(value)  # type: ignore[call-overload]  # Real's stub lacks __int__; float, numpy, Fraction define it
    else:
        problems.append(
            Problem(
                "a count must be a whole number",
                field=name,
                value=value,
                fix="round the count (k = round(rate * n)) before calling",
            )
        )
        return 0
    if v < 0:
        problems.append(Problem("a count cannot be negative", field=name, value=value, fix="pass a count >= 0"))
    return v


def _check_k_n(kname: str, k: int, nname: str, n: int, problems: list[Problem]) -> None:
    if 0 <= n and k > n:
        problems.append(
            Problem(
                f"successes exceed trials ({kname} > {nname} = {n})",
                field=kname,
                value=k,
                fix=f"pass 0 <= {kname} <= {nname}",
            )
        )


_LEVEL_EXAMPLES = {"level": "level=0.95", "alpha": "alpha=0.05", "power": "power=0.8"}


def _check_level(level: Any, problems: list[Problem], name: str = "level") -> float:
    try:
        lv = float(level)
    except (TypeError, ValueError):
        lv = NAN
    if not (0.0 < lv < 1.0):
        problems.append(
            Problem(
                "must lie strictly between 0 and 1",
                field=name,
                value=level,
                fix=f"e.g. {_LEVEL_EXAMPLES.get(name, name + '=0.95')}",
            )
        )
    return lv


def _check_alternative(alternative: Any, problems: list[Problem]) -> str:
    if alternative not in ALTERNATIVES:
        problems.append(
            Problem(
                "unknown alternative",
                field="alternative",
                value=alternative,
                fix='use "two-sided", "greater" (treatment / first group larger) or "less"',
            )
        )
    return alternative


def _two_groups(k1, n1, k2, n2, problems: list[Problem]) -> tuple[int, int, int, int]:
    k1 = _as_count("k1", k1, problems)
    n1 = _as_count("n1", n1, problems)
    k2 = _as_count("k2", k2, problems)
    n2 = _as_count("n2", n2, problems)
    _check_k_n("k1", k1, "n1", n1, problems)
    _check_k_n("k2", k2, "n2", n2, problems)
    return k1, n1, k2, n2


def _empty_group_reason(n1: int, n2: int) -> str | None:
    empty = [name for name, n in (("group 1 (n1)", n1), ("group 2 (n2)", n2)) if n == 0]
    return f"{' and '.join(empty)} has no items" if empty else None


def _clustered_args(values: Any, clusters: Any, level: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The checked (values, cluster labels, level) of a clustered estimator: one label per value."""
    problems: list[Problem] = []
    x = _vector("values", values, problems)
    level = _check_level(level, problems)
    g = np.asarray(clusters)
    if g.ndim != 1 or (x.ndim == 1 and g.shape[0] != x.shape[0]):
        problems.append(
            Problem(f"need one cluster label per value ({x.size} values)", field="clusters", value=f"shape {g.shape}")
        )
    _raise(problems)
    return x, g, level


def _vector(name: str, x: Any, problems: list[Problem]) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        problems.append(Problem("must be a sequence of numbers", field=name, value=type(x).__name__))
        return np.empty(0)
    if a.ndim != 1:
        problems.append(
            Problem("must be one-dimensional", field=name, value=f"shape {a.shape}", fix="pass one value per item")
        )
        return np.empty(0)
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        problems.append(
            Problem(
                f"{bad} value(s) are NaN or infinite",
                field=name,
                value=bad,
                fix="drop or score the missing items before pairing (records do the pairing)",
            )
        )
    return a


def _paired(baseline: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    problems: list[Problem] = []
    b = _vector("baseline", baseline, problems)
    t = _vector("treatment", treatment, problems)
    if not problems and b.shape != t.shape:
        problems.append(
            Problem(
                f"paired arms differ in length (baseline {b.size}, treatment {t.size})",
                field="treatment",
                value=t.size,
                fix="pair the arms on item id first (records.paired)",
            )
        )
    _raise(problems)
    return b, t


def _z_two_sided(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2.0))


def _impl(lib: str, name: str) -> str:
    """Provenance string, e.g. 'scipy 1.17.1 scipy.stats.boschloo_exact'."""
    if lib == "scipy":
        import scipy

        return f"scipy {scipy.__version__} {name}"
    if lib == "statsmodels":
        import statsmodels

        return f"statsmodels {statsmodels.__version__} {name}"
    return f"{lib} {name}"


def _nan_test(method: str, alternative: str, n: int, reason: str, details: dict | None = None) -> TestResult:
    return TestResult(NAN, NAN, method, alternative, int(n), reason, dict(details or {}))


def _nan_estimate(method: str, n: int, level: float, reason: str, value: float = NAN, **kw: Any) -> Estimate:
    return Estimate(float(value), Interval.nan(level, method, reason), NAN, int(n), method, reason=reason, **kw)


# --------------------------------------------------------------------------------------------------------------
# Intervals for proportions


def wilson(k: int, n: int, level: float = 0.95) -> Interval:
    """Wilson score interval for one proportion k/n.

    Wilson (1927), JASA 22:209; recommended by Newcombe (1998), Stat Med 17:857 (method 3). Computed with
    statsmodels ``proportion_confint(method="wilson")`` — the method is passed explicitly because statsmodels
    defaults to Wald. n == 0 gives a NaN interval with a reason.
    """
    problems: list[Problem] = []
    k = _as_count("k", k, problems)
    n = _as_count("n", n, problems)
    _check_k_n("k", k, "n", n, problems)
    level = _check_level(level, problems)
    _raise(problems)
    method = "wilson"
    if n == 0:
        return Interval.nan(level, method, "n = 0: no trials, the proportion is undefined")
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(k, n, alpha=1.0 - level, method="wilson")
    return Interval(max(0.0, float(low)), min(1.0, float(high)), level, method)  # clip float rounding only


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> Interval:
    """CI for p1 − p2 (independent groups): Newcombe's hybrid score interval, method 10.

    Newcombe (1998), Stat Med 17:873, method 10 (Wilson limits of each proportion combined by the square-and-add
    rule). Computed with statsmodels ``confint_proportions_2indep(k1, n1, k2, n2, method="newcomb",
    compare="diff")``; argument order (count1, nobs1, count2, nobs2) gives p1 − p2 — checked against the reference
    56/70 − 48/80 → [0.0524, 0.3339]. An empty group gives a NaN interval with a reason.
    """
    problems: list[Problem] = []
    k1, n1, k2, n2 = _two_groups(k1, n1, k2, n2, problems)
    level = _check_level(level, problems)
    _raise(problems)
    method = "newcombe-hybrid-score"
    reason = _empty_group_reason(n1, n2)
    if reason:
        return Interval.nan(level, method, reason)
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff", alpha=1.0 - level)
    # statsmodels can return -1.0000000000000002 at 0/n1 vs n2/n2: clip the rounding, not the method
    return Interval(max(-1.0, float(low)), min(1.0, float(high)), level, method)


# --------------------------------------------------------------------------------------------------------------
# Exact and asymptotic tests for two independent proportions


def _two_group_details(k1: int, n1: int, k2: int, n2: int, impl: str, **extra: Any) -> dict:
    return {"k1": k1, "n1": n1, "k2": k2, "n2": n2, "impl": impl, **extra}


def fisher_exact(k1: int, n1: int, k2: int, n2: int, alternative: str = "two-sided") -> TestResult:
    """Fisher's exact test of p1 = p2 on the 2×2 table [[k1, n1−k1], [k2, n2−k2]].

    Fisher (1935), The Design of Experiments (tea tasting). Computed with ``scipy.stats.fisher_exact``;
    ``statistic`` is the sample odds ratio (inf or NaN with zero cells — the p-value is still valid).
    "greater" = p1 > p2 (odds ratio > 1). The two-sided p is the default; say so when reporting it.
    """
    problems: list[Problem] = []
    k1, n1, k2, n2 = _two_groups(k1, n1, k2, n2, problems)
    _check_alternative(alternative, problems)
    _raise(problems)
    method = "fisher-exact"
    details = _two_group_details(k1, n1, k2, n2, _impl("scipy", "scipy.stats.fisher_exact"))
    reason = _empty_group_reason(n1, n2)
    if reason:
        return _nan_test(method, alternative, n1 + n2, reason, details)
    from scipy.stats import fisher_exact as _fisher

    res = _fisher([[k1, n1 - k1], [k2, n2 - k2]], alternative=alternative)
    return TestResult(float(res.statistic), float(res.pvalue), method, alternative, n1 + n2, None, details)


def fisher_all(k1: int, n1: int, k2: int, n2: int) -> dict[str, TestResult]:
    """Fisher's exact test under all three alternatives, keyed by alternative (see `fisher_exact`)."""
    return {alt: fisher_exact(k1, n1, k2, n2, alt) for alt in ALTERNATIVES}


def _unconditional(which: str, k1, n1, k2, n2, alternative: str, n_points: int) -> TestResult:
    problems: list[Problem] = []
    k1, n1, k2, n2 = _two_groups(k1, n1, k2, n2, problems)
    _check_alternative(alternative, problems)
    _raise(problems)
    method = f"{which}-exact"
    # scipy takes the two groups as COLUMNS: [[pass1, pass2], [fail1, fail2]] (reference/statistics.md, traps).
    table = [[k1, k2], [n1 - k1, n2 - k2]]
    details = _two_group_details(
        k1, n1, k2, n2, _impl("scipy", f"scipy.stats.{which}_exact"), table=table, nuisance_points=n_points
    )
    reason = _empty_group_reason(n1, n2)
    if reason:
        return _nan_test(method, alternative, n1 + n2, reason, details)
    import scipy.stats

    fn = getattr(scipy.stats, f"{which}_exact")
    res = fn(table, alternative=alternative, n=n_points)
    p = float(res.pvalue)
    if not math.isfinite(p):
        return _nan_test(method, alternative, n1 + n2, f"scipy {which}_exact returned a non-finite p", details)
    return TestResult(float(res.statistic), min(p, 1.0), method, alternative, n1 + n2, None, details)


def boschloo_exact(
    k1: int, n1: int, k2: int, n2: int, alternative: str = "two-sided", n_points: int = 32
) -> TestResult:
    """Boschloo's exact unconditional test of p1 = p2 (uniformly more powerful than Fisher's).

    Boschloo (1970), Statistica Neerlandica 24:1. Computed with ``scipy.stats.boschloo_exact``, which takes the
    groups as COLUMNS: we pass ``[[k1, k2], [n1−k1, n2−k2]]``. With that table scipy's "greater" is
    p(column 1) > p(column 2), i.e. our "greater" = p1 > p2 maps to scipy "greater" unchanged. Passing the groups
    as rows instead gives a wrong p with no warning (reference: boschloo_exact([[74,31],[43,32]], "greater")
    → p 0.0355, i.e. 74/117 vs 31/63). ``statistic`` is scipy's (Fisher's one-sided p of the observed table).
    Cost grows with n1·n2 (≈2.5 s at 500 per group).
    """
    return _unconditional("boschloo", k1, n1, k2, n2, alternative, n_points)


def barnard_exact(k1: int, n1: int, k2: int, n2: int, alternative: str = "two-sided", n_points: int = 32) -> TestResult:
    """Barnard's exact unconditional test (Wald statistic, pooled variance) of p1 = p2.

    Barnard (1945), Nature 156:177. ``scipy.stats.barnard_exact`` with the groups as COLUMNS, exactly as in
    `boschloo_exact`; our "greater" = p1 > p2 = scipy "greater".
    """
    return _unconditional("barnard", k1, n1, k2, n2, alternative, n_points)


def ztest_2prop(k1: int, n1: int, k2: int, n2: int, alternative: str = "two-sided", pooled: bool = True) -> TestResult:
    """Two-proportion z-test of p1 = p2; "greater" = p1 > p2.

    Pooled variance (the classical score test; z² equals the uncorrected chi-square): statsmodels
    ``proportions_ztest``. Unpooled (Wald, the form lm-eval-style comparisons use): statsmodels
    ``test_proportions_2indep(method="wald")``. NaN with a reason when the variance is zero (both groups all pass
    or all fail) or a group is empty.
    """
    problems: list[Problem] = []
    k1, n1, k2, n2 = _two_groups(k1, n1, k2, n2, problems)
    _check_alternative(alternative, problems)
    _raise(problems)
    method = "z-test-pooled" if pooled else "z-test-unpooled"
    if pooled:
        impl = _impl("statsmodels", "statsmodels.stats.proportion.proportions_ztest")
    else:
        impl = _impl("statsmodels", "statsmodels.stats.proportion.test_proportions_2indep(method='wald')")
    details = _two_group_details(k1, n1, k2, n2, impl)
    reason = _empty_group_reason(n1, n2)
    if reason:
        return _nan_test(method, alternative, n1 + n2, reason, details)
    p1, p2 = k1 / n1, k2 / n2
    var = (
        ((k1 + k2) / (n1 + n2)) * (1 - (k1 + k2) / (n1 + n2)) * (1 / n1 + 1 / n2)
        if pooled
        else p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    )
    if var <= 0.0:
        return _nan_test(
            method,
            alternative,
            n1 + n2,
            "zero variance (every item in the groups has the same outcome): z undefined",
            details,
        )
    if pooled:
        from statsmodels.stats.proportion import proportions_ztest

        z, p = proportions_ztest([k1, k2], [n1, n2], alternative=_SM_ALT[alternative])
    else:
        from statsmodels.stats.proportion import test_proportions_2indep

        with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels also computes ratio/odds ratio
            res = test_proportions_2indep(
                k1, n1, k2, n2, method="wald", compare="diff", alternative=_SM_ALT[alternative]
            )
        z, p = res.statistic, res.pvalue
    return TestResult(float(z), float(p), method, alternative, n1 + n2, None, details)


def chi2_2x2(k1: int, n1: int, k2: int, n2: int, correction: bool = True) -> TestResult:
    """Pearson chi-square test of independence on [[k1, n1−k1], [k2, n2−k2]] (two-sided only).

    ``scipy.stats.chi2_contingency``; ``correction=True`` applies Yates' continuity correction (Yates 1934,
    JRSS Suppl 1:217), scipy's default for 2×2. NaN with a reason when an expected count is zero.
    """
    problems: list[Problem] = []
    k1, n1, k2, n2 = _two_groups(k1, n1, k2, n2, problems)
    _raise(problems)
    method = "chi2-yates" if correction else "chi2"
    details = _two_group_details(k1, n1, k2, n2, _impl("scipy", "scipy.stats.chi2_contingency"))
    reason = _empty_group_reason(n1, n2)
    if reason is None and (k1 + k2 == 0 or k1 + k2 == n1 + n2):
        reason = "every item has the same outcome: an expected count is zero, chi-square undefined"
    if reason:
        return _nan_test(method, "two-sided", n1 + n2, reason, details)
    from scipy.stats import chi2_contingency

    res = chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=correction)
    details["dof"] = int(res.dof)
    return TestResult(float(res.statistic), float(res.pvalue), method, "two-sided", n1 + n2, None, details)


# --------------------------------------------------------------------------------------------------------------
# McNemar (paired 0/1 outcomes)


def _bc(b, c, problems: list[Problem]) -> tuple[int, int]:
    return _as_count("b", b, problems), _as_count("c", c, problems)


def _mid_p(b: int, c: int, alternative: str) -> float:
    """Mid-p McNemar (Fagerland, Lydersen & Laake 2013, BMC Med Res Methodol 13:91). Hand-written from
    scipy.stats.binom: no library exposes it. X ~ Binomial(b + c, 1/2) counts treatment-only wins."""
    from scipy.stats import binom

    n = b + c
    if alternative == "greater":
        return float(binom.sf(b, n, 0.5) + 0.5 * binom.pmf(b, n, 0.5))
    if alternative == "less":
        return float(binom.cdf(b, n, 0.5) - 0.5 * binom.pmf(b, n, 0.5))
    m = min(b, c)
    return float(min(1.0, 2.0 * binom.cdf(m, n, 0.5) - binom.pmf(m, n, 0.5)))


def mcnemar_exact(b: int, c: int, alternative: str = "two-sided", n_pairs: int | None = None) -> TestResult:
    """Exact (conditional binomial) McNemar test of equal pass rates on paired 0/1 outcomes.

    b = pairs with baseline 0 / treatment 1 (treatment-only wins), c = baseline 1 / treatment 0. Under H0,
    b ~ Binomial(b + c, 1/2). ``statistic`` = b. p from ``scipy.stats.binomtest(b, b + c, 0.5)``; the two-sided p
    equals statsmodels ``mcnemar(exact=True)`` (twice the smaller tail, capped at 1). "greater" = treatment better
    (b > c). ``details["mid_p"]`` is the mid-p variant for the same alternative (Fagerland et al. 2013), which
    keeps the size close to nominal at small b + c.

    b + c == 0 (no discordant pairs) is computable: the arms agree on every item and p = 1.0 (mid-p: 1.0
    two-sided, 0.5 one-sided, as the mid-p formula gives); ``details["note"]`` says so. ``n`` is ``n_pairs`` when
    given, else b + c.
    """
    problems: list[Problem] = []
    b, c = _bc(b, c, problems)
    _check_alternative(alternative, problems)
    if n_pairs is not None:
        n_pairs = _as_count("n_pairs", n_pairs, problems)
        if n_pairs < b + c:
            problems.append(
                Problem("fewer pairs than discordant pairs", field="n_pairs", value=n_pairs, fix="n_pairs >= b + c")
            )
    _raise(problems)
    method = "mcnemar-exact"
    n = n_pairs if n_pairs is not None else b + c
    details: dict[str, Any] = {
        "b": b,
        "c": c,
        "mid_p": _mid_p(b, c, alternative),
        "impl": _impl("scipy", "scipy.stats.binomtest"),
    }
    if b + c == 0:
        details["note"] = "no discordant pairs: the arms agree on every item, p = 1"
        return TestResult(float(b), 1.0, method, alternative, n, None, details)
    from scipy.stats import binomtest

    p = float(binomtest(b, b + c, 0.5, alternative=alternative).pvalue)
    return TestResult(float(b), min(p, 1.0), method, alternative, n, None, details)


def _binary(name: str, a: np.ndarray, problems: list[Problem]) -> None:
    bad = np.count_nonzero((a != 0) & (a != 1))
    if bad:
        problems.append(
            Problem(
                f"{bad} value(s) are not 0/1",
                field=name,
                value=bad,
                fix="McNemar needs pass/fail outcomes; use paired_bootstrap_delta for scores",
            )
        )


def mcnemar_paired(baseline: Any, treatment: Any, alternative: str = "two-sided") -> TestResult:
    """Exact McNemar test (`mcnemar_exact`) from paired 0/1 arrays; b and c are counted here.

    ``n`` is the number of pairs; ``details`` carries b, c, mid_p and the concordant counts.
    """
    bl, tr = _paired(baseline, treatment)
    problems: list[Problem] = []
    _binary("baseline", bl, problems)
    _binary("treatment", tr, problems)
    _check_alternative(alternative, problems)
    _raise(problems)
    b = int(np.count_nonzero((bl == 0) & (tr == 1)))
    c = int(np.count_nonzero((bl == 1) & (tr == 0)))
    res = mcnemar_exact(b, c, alternative, n_pairs=bl.size)
    both = int(np.count_nonzero((bl == 1) & (tr == 1)))
    details = {**res.details, "both_pass": both, "both_fail": bl.size - b - c - both}
    return TestResult(res.statistic, res.p_value, res.method, res.alternative, res.n, res.reason, details)


def mcnemar_chi2(b: int, c: int, correction: bool = False, alternative: str = "two-sided") -> TestResult:
    """Asymptotic McNemar test: chi² = (|b − c| − cc)² / (b + c), cc = 1 with Edwards' continuity correction.

    McNemar (1947), Psychometrika 12:153; Edwards (1948). Two-sided p from statsmodels
    ``mcnemar(exact=False, correction=...)``. One-sided p (hand-written; no library offers it) from the signed
    z = (b − c ∓ cc) / sqrt(b + c) and the normal tail ("greater" = b > c). ``statistic`` is chi²; z is in details.
    b + c == 0 gives NaN with a reason (0/0; the exact test gives p = 1).
    """
    problems: list[Problem] = []
    b, c = _bc(b, c, problems)
    _check_alternative(alternative, problems)
    _raise(problems)
    method = "mcnemar-chi2-cc" if correction else "mcnemar-chi2"
    details: dict[str, Any] = {
        "b": b,
        "c": c,
        "impl": _impl("statsmodels", "statsmodels.stats.contingency_tables.mcnemar"),
    }
    if b + c == 0:
        return _nan_test(
            method, alternative, 0, "no discordant pairs: chi-square is 0/0 (exact McNemar gives p = 1)", details
        )
    from statsmodels.stats.contingency_tables import mcnemar

    res = mcnemar([[0, b], [c, 0]], exact=False, correction=correction)
    cc = 1.0 if correction else 0.0
    if alternative == "two-sided":
        p = float(res.pvalue)
        details["z"] = math.copysign(math.sqrt(float(res.statistic)), b - c)
    else:
        from scipy.stats import norm

        z = (b - c - cc) / math.sqrt(b + c) if alternative == "greater" else (b - c + cc) / math.sqrt(b + c)
        p = float(norm.sf(z) if alternative == "greater" else norm.cdf(z))
        details["z"] = z
    return TestResult(float(res.statistic), p, method, alternative, b + c, None, details)


# --------------------------------------------------------------------------------------------------------------
# Paired deltas of means


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either arm is constant (undefined, not 0)."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN
    with np.errstate(divide="ignore", invalid="ignore"):  # variance can underflow for subnormal spreads
        r = float(np.corrcoef(x, y)[0, 1])
    return r if math.isfinite(r) else NAN


# Paired bootstrap (`paired_bootstrap_delta`): implementation notes.
#
# Hand-written (vectorised numpy) because the library version is slower: the "index" path reproduces
# ``scipy.stats.bootstrap((d,), np.mean, method="percentile", rng=rng)`` replicate for replicate with the same
# generator (tested), at ~1 s instead of ~1.6 s (batched) or ~8 s (unbatched) for n = 100,000 and 2,000 resamples,
# and the "multinomial" path is ~100× faster still.
#
# Sampler (recorded in ``details["sampler"]``):
# - "index": ``rng.integers`` index draws in chunks, mean of gathered differences (`_index_means`);
# - "multinomial": when d has few distinct values (0/1 outcomes give at most 3), drawing n indices and averaging is
#   distributed exactly as multinomial counts over the distinct values, so those counts are drawn directly (one
#   multinomial of n over K categories per replicate; `_multinomial_means`). Categories are ordered by first
#   occurrence, so swapping the arms with the same seed gives exactly negated replicates on both paths.
#
# ``max_draws`` bounds the cost of the "index" path (n item indices per replicate): it uses
# min(resamples, max_draws // n) replicates when that is at least `BOOTSTRAP_MIN_RESAMPLES` (``resamples`` and
# ``details["resamples_requested"]`` say so), and above that size returns a NaN estimate whose reason says the
# bootstrap was skipped — at such n the paired CLT interval is its large-sample equivalent. The "multinomial" path
# costs resamples × (distinct values), whatever n, and is never capped. None (the default): no bound.


def paired_bootstrap_delta(
    baseline: Any,
    treatment: Any,
    rng: np.random.Generator,
    resamples: int = 10_000,
    level: float = 0.95,
    seed: int | None = None,
    max_draws: int | None = None,
) -> Estimate:
    """Paired bootstrap of delta = mean(treatment − baseline), percentile interval.

    Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 13 (percentile interval); paired resampling
    as in Koehn (2004), EMNLP, and Miller (2024), arXiv:2411.00640. Each replicate resamples item INDICES once and
    applies them to both arms — implemented by resampling the per-item differences d_i = t_i − b_i, which is the
    same thing (mean(t[idx]) − mean(b[idx]) = mean(d[idx])); the arms are never resampled independently.
    ``se`` is the standard deviation of the replicates (ddof=1) — NOT divided by sqrt(resamples), a known
    under-statement in some tools. Hand-written: the notes above say why and describe the samplers and ``max_draws``.

    ``seed`` is provenance only (the seed used to make ``rng``); it is recorded, not used. n < 2 gives a NaN
    estimate with a reason; if every difference is equal the interval would be zero-width, so it and ``se`` are
    NaN with a reason (use McNemar for 0/1 outcomes).
    """
    bl, tr = _paired(baseline, treatment)
    problems: list[Problem] = []
    level = _check_level(level, problems)
    _raise(problems + _bootstrap_arg_problems(rng, resamples, max_draws))
    resamples = int(resamples)
    method = "paired-bootstrap-percentile"
    n = bl.size
    kw: dict[str, Any] = {"seed": seed, "resamples": resamples}
    if n < 2:
        return _nan_estimate(method, n, level, f"n = {n} paired item(s): need at least 2 to resample", **kw)
    d = tr - bl
    value = float(d.mean())
    details: dict[str, Any] = {"mean_baseline": float(bl.mean()), "mean_treatment": float(tr.mean())}
    if np.ptp(d) == 0:
        return _nan_estimate(
            method,
            n,
            level,
            "every paired difference is equal: bootstrap replicates are constant and the interval "
            "would be zero-width (use mcnemar_exact for 0/1 outcomes)",
            value=value,
            details={**details, "sample_sd_diff": 0.0, "sampler": None},
            **kw,
        )

    uniq, first, inverse = np.unique(d, return_index=True, return_inverse=True)
    if uniq.size <= _GROUPED_MAX_DISTINCT and 4 * uniq.size <= n:
        reps = _multinomial_means(uniq, first, inverse, n, resamples, rng)
        details["sampler"] = "multinomial"
    else:
        if max_draws is not None and resamples * n > max_draws:
            capped = int(max_draws) // n
            if capped < BOOTSTRAP_MIN_RESAMPLES:
                return _nan_estimate(
                    method,
                    n,
                    level,
                    f"skipped: {n:,} items with {uniq.size:,} distinct differences would need "
                    f"{BOOTSTRAP_MIN_RESAMPLES:,} × {n:,} resampled indices, beyond the "
                    f"{int(max_draws):,} allowed; at this n the paired CLT interval is its "
                    "large-sample equivalent",
                    value=value,
                    details={**details, "sampler": None, "resamples_requested": resamples},
                    seed=seed,
                    resamples=0,
                )
            details["resamples_requested"] = resamples
            resamples = capped
            kw["resamples"] = capped
        reps = _index_means(d, resamples, rng)
        details["sampler"] = "index"
    alpha = 1.0 - level
    # Both tails are read the same way (upper = −lower tail of −reps), so swapping the arms, which negates
    # every replicate, mirrors the interval exactly rather than to rounding.
    low = float(np.quantile(reps, alpha / 2.0))
    high = -float(np.quantile(-reps, alpha / 2.0))
    se = float(np.std(reps, ddof=1))
    return Estimate(value, Interval(float(low), float(high), level, method), se, n, method, details=details, **kw)


def _bootstrap_arg_problems(rng: Any, resamples: Any, max_draws: Any) -> list[Problem]:
    """:func:`paired_bootstrap_delta`'s ``rng``, ``resamples`` and ``max_draws`` checked."""
    problems: list[Problem] = []
    if not isinstance(rng, np.random.Generator):
        problems.append(
            Problem(
                "must be a numpy.random.Generator",
                field="rng",
                value=type(rng).__name__,
                fix="rng = numpy.random.default_rng(seed)",
            )
        )
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 2:
        problems.append(
            Problem("must be an integer >= 2", field="resamples", value=resamples, fix="e.g. resamples=10_000")
        )
    if max_draws is not None and (
        isinstance(max_draws, bool) or not isinstance(max_draws, numbers.Integral) or max_draws < 1
    ):
        problems.append(Problem("must be a positive integer or None", field="max_draws", value=max_draws))
    return problems


def _multinomial_means(
    uniq: np.ndarray, first: np.ndarray, inverse: np.ndarray, n: int, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap means of n draws from few distinct values, as multinomial counts (the "multinomial" sampler)."""
    order = np.argsort(first, kind="stable")
    values = uniq[order]
    counts = np.bincount(inverse.ravel(), minlength=uniq.size)[order]
    draws = rng.multinomial(n, counts / n, size=resamples)
    return (draws * values).sum(axis=1) / n


def _index_means(d: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of ``d`` from index draws in chunks (the "index" sampler of `paired_bootstrap_delta`)."""
    n = d.size
    reps = np.empty(resamples)
    rows = max(1, min(resamples, _CHUNK_ELEMENTS // n))
    dtype = np.int32 if n < 2**31 else np.int64
    for start in range(0, resamples, rows):
        m = min(rows, resamples - start)
        idx = rng.integers(0, n, size=(m, n), dtype=dtype)
        reps[start : start + m] = d[idx].mean(axis=1)
    return reps


def clustered_se(values: Any, clusters: Any, correction: bool = True, level: float = 0.95) -> Estimate:
    """Mean of ``values`` with a cluster-robust (Liang–Zeger) standard error.

    Liang & Zeger (1986), Biometrika 73:13; recommended for evals whose items share a passage/template by
    Miller (2024), "Adding Error Bars to Evals", arXiv:2411.00640 (clustered standard errors).
    SE² = Σ_c (Σ_{i∈c} (x_i − x̄))² / n², times C/(C−1) with ``correction`` — computed as the intercept of
    statsmodels ``OLS(values, 1).fit(cov_type="cluster")`` (its default correction C/(C−1)·(n−1)/(n−k) is exactly
    C/(C−1) for an intercept-only model, k = 1). Returns an `Estimate` whose ``se`` is the clustered SE and whose
    interval is the normal interval mean ± z·SE (as in Miller 2024; anti-conservative with few clusters —
    ``details["clusters"]`` says how many). Fewer than 2 clusters, or a zero clustered SE, gives NaN
    with a reason.
    """
    x, g, level = _clustered_args(values, clusters, level)
    method = "cluster-robust-liang-zeger" + ("" if correction else "-no-correction")
    n = x.size
    labels, codes = np.unique(g, return_inverse=True)
    n_clusters = int(labels.size)
    details: dict[str, Any] = {
        "clusters": n_clusters,
        "correction": bool(correction),
        "impl": _impl("statsmodels", "statsmodels OLS cov_type='cluster'"),
    }
    if n_clusters < 2:
        return _nan_estimate(
            method,
            n,
            level,
            f"{n_clusters} cluster(s): need at least 2 for a clustered SE",
            value=float(x.mean()) if n else NAN,
            details=details,
        )
    import statsmodels.api as sm

    fit = sm.OLS(x, np.ones(n)).fit(
        cov_type="cluster", cov_kwds={"groups": codes.ravel(), "use_correction": bool(correction)}
    )
    mean, se = float(fit.params[0]), float(fit.bse[0])
    if not (se > 0.0):
        return _nan_estimate(
            method,
            n,
            level,
            "clustered SE is zero (cluster sums of residuals all zero): the interval would be zero-width",
            value=mean,
            details=details,
        )
    z = _z_two_sided(level)
    return Estimate(mean, Interval(mean - z * se, mean + z * se, level, method), se, n, method, details=details)


def paired_clt_delta(baseline: Any, treatment: Any, level: float = 0.95, clusters: Any = None) -> Estimate:
    """Paired CLT estimate of delta = mean(treatment − baseline) with a normal interval.

    Miller (2024), "Adding Error Bars to Evals", arXiv:2411.00640 (paired differences):
    SE = sqrt(Σ(d_i − d̄)² / (n(n − 1))), CI d̄ ± z·SE. Hand-written (two lines of numpy; a library call would
    only hide the formula the paper gives). ``details`` has the Pearson correlation of the arms (NaN if either arm
    is constant; the paper recommends reporting it — positive correlation is why pairing shrinks the SE) and the
    unpaired SE for comparison. With ``clusters`` (one label per item) the interval uses the clustered SE from
    `clustered_se` on the differences (Liang–Zeger with C/(C−1)); the plain paired SE stays in ``details``.
    n < 2, or all differences equal (zero-width interval), gives NaN with a reason.
    """
    bl, tr = _paired(baseline, treatment)
    problems: list[Problem] = []
    level = _check_level(level, problems)
    _raise(problems)
    n = bl.size
    method = "paired-clt" if clusters is None else "paired-clt-clustered"
    if n < 2:
        return _nan_estimate(method, n, level, f"n = {n} paired item(s): need at least 2 for a standard error")
    d = tr - bl
    value = float(d.mean())
    se_clt = float(math.sqrt(float(np.sum((d - value) ** 2)) / (n * (n - 1))))
    details: dict[str, Any] = {
        "se_clt": se_clt,
        "correlation": _pearson(bl, tr),
        "sd_diff": float(np.std(d, ddof=1)),
        "se_unpaired": float(math.sqrt((np.var(bl, ddof=1) + np.var(tr, ddof=1)) / n)),
        "mean_baseline": float(bl.mean()),
        "mean_treatment": float(tr.mean()),
    }
    if clusters is None:
        se = se_clt
    else:
        est = clustered_se(d, clusters, correction=True, level=level)
        details["se_cluster"] = est.se
        details["clusters"] = est.details.get("clusters")
        if est.reason:
            return _nan_estimate(method, n, level, est.reason, value=value, details=details)
        se = est.se
    # Equal differences whose mean is off by a rounding unit (0.7 three times) would give an SE of 1e-17.
    if not (se > 0.0) or np.ptp(d) == 0:
        return _nan_estimate(
            method,
            n,
            level,
            "every paired difference is equal: SE is 0 and the interval would "
            "be zero-width (use mcnemar_exact for 0/1 outcomes)",
            value=value,
            details=details,
        )
    z = _z_two_sided(level)
    return Estimate(value, Interval(value - z * se, value + z * se, level, method), se, n, method, details=details)


def paired_ttest(baseline: Any, treatment: Any, alternative: str = "two-sided") -> TestResult:
    """Paired t-test of mean(treatment − baseline) = 0; "greater" = treatment larger.

    Student (1908); ``scipy.stats.ttest_rel(treatment, baseline)``. n < 2, or zero variance of the differences
    (t is 0/0 or ±inf), gives NaN with a reason.
    """
    bl, tr = _paired(baseline, treatment)
    problems: list[Problem] = []
    _check_alternative(alternative, problems)
    _raise(problems)
    method = "paired-t"
    n = bl.size
    details: dict[str, Any] = {"impl": _impl("scipy", "scipy.stats.ttest_rel")}
    if n < 2:
        return _nan_test(method, alternative, n, f"n = {n} pair(s): need at least 2", details)
    d = tr - bl
    details.update(mean_diff=float(d.mean()), df=n - 1)
    if np.ptp(d) == 0:
        return _nan_test(
            method, alternative, n, "every paired difference is equal: t is undefined (zero variance)", details
        )
    from scipy.stats import ttest_rel

    res = ttest_rel(tr, bl, alternative=alternative)
    return TestResult(float(res.statistic), float(res.pvalue), method, alternative, n, None, details)


def welch_ttest(first: Any, second: Any, alternative: str = "two-sided") -> TestResult:
    """Welch's unequal-variance t-test for two independent samples; "greater" = first larger.

    Welch (1947), Biometrika 34:28; ``scipy.stats.ttest_ind(equal_var=False)``. A group with < 2 values, or both
    groups constant, gives NaN with a reason. For paired arms use `paired_ttest`.
    """
    problems: list[Problem] = []
    a = _vector("first", first, problems)
    b = _vector("second", second, problems)
    _check_alternative(alternative, problems)
    _raise(problems)
    method = "welch-t"
    details: dict[str, Any] = {"n1": a.size, "n2": b.size, "impl": _impl("scipy", "scipy.stats.ttest_ind")}
    n = a.size + b.size
    if a.size < 2 or b.size < 2:
        return _nan_test(method, alternative, n, "each group needs at least 2 values", details)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return _nan_test(method, alternative, n, "both groups are constant: t is undefined (zero variance)", details)
    from scipy.stats import ttest_ind

    res = ttest_ind(a, b, equal_var=False, alternative=alternative)
    details["df"] = float(res.df)
    return TestResult(float(res.statistic), float(res.pvalue), method, alternative, n, None, details)


# --------------------------------------------------------------------------------------------------------------
# Power: minimum detectable effect and sample size


def _z_power(alpha: float, power: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1.0 - alpha / 2.0) + norm.ppf(power))


def _check_alpha_power(alpha: Any, power: Any, problems: list[Problem]) -> tuple[float, float]:
    return _check_level(alpha, problems, "alpha"), _check_level(power, problems, "power")


def mde_paired(n: int, sd_diff: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable effect of a paired design: (z_{1−α/2} + z_power) · sd_diff / sqrt(n).

    Normal approximation, two-sided α (Miller 2024, arXiv:2411.00640, power analysis; Cohen 1988).
    ``sd_diff`` is the SD of the per-item differences; for 0/1 outcomes get it from the observed discordance
    with `sd_diff_from_discordance`. Hand-written: statsmodels' power classes solve for standardized effect sizes, this
    is the same formula in the eval's own units.
    """
    problems: list[Problem] = []
    n = _as_count("n", n, problems)
    if n == 0 and not problems:
        problems.append(Problem("need at least one pair", field="n", value=n))
    if not (isinstance(sd_diff, numbers.Real) and math.isfinite(sd_diff) and sd_diff >= 0):
        problems.append(Problem("must be a finite number >= 0", field="sd_diff", value=sd_diff))
    alpha, power = _check_alpha_power(alpha, power, problems)
    _raise(problems)
    return _z_power(alpha, power) * float(sd_diff) / math.sqrt(n)


def mde_unpaired(
    n_per_arm: int, p_baseline: float, alpha: float = 0.05, power: float = 0.8, direction: int = 1
) -> float:
    """Minimum detectable difference of two independent proportions with n_per_arm items each.

    statsmodels ``NormalIndPower().solve_power`` gives the detectable Cohen's h = 2·asin√p2 − 2·asin√p1 (two-sided
    α); it is turned back into a difference p2 − p_baseline upward (``direction`` = +1) or downward (−1) from the
    baseline rate (Cohen 1988, ch. 6). The arcsine scale keeps the variance right near 0 and 1, where the
    plain normal formula with the baseline variance for both arms is far too optimistic (4/89: 0.087 vs 0.124).
    For small n use `mde_fisher`, the exact power of the test actually run. NaN when no difference within [0, 1]
    reaches the power.
    """
    problems: list[Problem] = []
    n = _as_count("n_per_arm", n_per_arm, problems)
    if n == 0 and not problems:
        problems.append(Problem("need at least one item per arm", field="n_per_arm", value=n))
    if not (isinstance(p_baseline, numbers.Real) and 0.0 <= p_baseline <= 1.0):
        problems.append(Problem("must be a proportion in [0, 1]", field="p_baseline", value=p_baseline))
    alpha, power = _check_alpha_power(alpha, power, problems)
    _raise(problems)
    from statsmodels.stats.power import NormalIndPower

    h = float(
        NormalIndPower().solve_power(
            effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
        )
    )
    phi = math.asin(math.sqrt(float(p_baseline))) + (h / 2.0 if direction > 0 else -h / 2.0)
    if not 0.0 <= phi <= math.pi / 2:
        return NAN
    return abs(math.sin(phi) ** 2 - float(p_baseline))


def sd_diff_from_discordance(b: int, c: int, n: int) -> float:
    """SD of per-item differences d ∈ {−1, 0, 1} of paired 0/1 outcomes from the discordant counts:
    sqrt((b + c)/n − ((b − c)/n)²) (plug-in, ddof = 0). For `mde_paired`. NaN when n == 0."""
    problems: list[Problem] = []
    b, c = _bc(b, c, problems)
    n = _as_count("n", n, problems)
    if n < b + c and not problems:
        problems.append(Problem("fewer pairs than discordant pairs", field="n", value=n, fix="n >= b + c"))
    _raise(problems)
    if n == 0:
        return NAN
    return math.sqrt(max(0.0, (b + c) / n - ((b - c) / n) ** 2))


def sample_size_paired(delta: float, var_term: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Items needed to detect a delta: n = ⌈(z_{1−α/2} + z_{power})² · var_term / δ²⌉.

    Miller (2024), arXiv:2411.00640 (power analysis): var_term is the variance of the per-item
    differences (the paired ω² term). Reference: δ = 0.03, var_term = 1/9, α = 0.05, power 0.8 → n = 969.
    """
    problems: list[Problem] = []
    if not (isinstance(delta, numbers.Real) and math.isfinite(delta) and delta != 0):
        problems.append(
            Problem(
                "must be a finite, nonzero effect size", field="delta", value=delta, fix="e.g. delta=0.03 for 3 points"
            )
        )
    if not (isinstance(var_term, numbers.Real) and math.isfinite(var_term) and var_term > 0):
        problems.append(Problem("must be a finite variance > 0", field="var_term", value=var_term))
    alpha, power = _check_alpha_power(alpha, power, problems)
    _raise(problems)
    return int(math.ceil(_z_power(alpha, power) ** 2 * float(var_term) / float(delta) ** 2))


# --------------------------------------------------------------------------------------------------------------
# Multiple comparisons


def _adjust(pvalues: Any, method: str) -> np.ndarray:
    problems: list[Problem] = []
    p = _vector_allow_nan("pvalues", pvalues, problems)
    _raise(problems)
    out = np.full(p.shape, NAN)
    finite = np.isfinite(p)
    if finite.any():
        from statsmodels.stats.multitest import multipletests

        out[finite] = multipletests(p[finite], alpha=0.05, method=method)[1]
    return out


def _vector_allow_nan(name: str, x: Any, problems: list[Problem]) -> np.ndarray:
    try:
        p = np.asarray(x, dtype=float).ravel() if np.ndim(x) <= 1 else None
    except (TypeError, ValueError):
        p = None
    if p is None:
        problems.append(Problem("must be a flat sequence of p-values", field=name, value=type(x).__name__))
        return np.empty(0)
    bad = np.count_nonzero(np.isfinite(p) & ((p < 0) | (p > 1)))
    if bad:
        problems.append(Problem(f"{bad} p-value(s) outside [0, 1]", field=name, value=bad))
    return p


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm (1979), Scand J Stat 6:65, step-down FWER-adjusted p-values.

    statsmodels ``multipletests(method="holm")`` — passed explicitly: its default is Holm–Šidák. Use it for
    "find the perturbations that break the claim". NaN inputs stay NaN and are left out of the family.
    """
    return _adjust(pvalues, "holm")


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Benjamini & Hochberg (1995), JRSS B 57:289, FDR-adjusted p-values (statsmodels
    ``multipletests(method="fdr_bh")``, passed explicitly). NaN inputs stay NaN and are left out of the family."""
    return _adjust(pvalues, "fdr_bh")


# --------------------------------------------------------------------------------------------------------------
# Which test reproduces a reported p?


def p_value_variants(
    k1: int,
    n1: int,
    k2: int,
    n2: int,
    paired_b: int | None = None,
    paired_c: int | None = None,
    include_barnard: bool = True,
    max_unconditional_n: int = 400,
) -> list[TestResult]:
    """Every plausible test a paper might have used to get its p-value from these counts.

    Unpaired (group 1 = k1/n1, group 2 = k2/n2): Fisher exact, Boschloo exact, Barnard exact (two-sided, greater,
    less each), two-proportion z-test pooled and unpooled (two-sided, greater, less each), chi-square with and
    without Yates. Paired, when ``paired_b`` and ``paired_c`` are given (b = treatment-only wins, c =
    baseline-only wins): McNemar exact and mid-p (two-sided, greater, less each), McNemar chi-square with and
    without continuity correction (two-sided, greater, less each). Each result has a distinct
    (method, alternative) label; a reported p that matches only a one-sided variant was probably reported as if
    two-sided. Boschloo/Barnard cost grows with n1·n2 (seconds at several hundred per group), so they are left out
    when either group exceeds ``max_unconditional_n`` (at such n they agree with Fisher/z to the digits papers print).
    """
    out: list[TestResult] = []
    for alt in ALTERNATIVES:
        out.append(fisher_exact(k1, n1, k2, n2, alt))
    unconditional = max(n1, n2) <= max_unconditional_n
    if unconditional:
        for alt in ALTERNATIVES:
            out.append(boschloo_exact(k1, n1, k2, n2, alt))
    if include_barnard and unconditional:
        for alt in ALTERNATIVES:
            out.append(barnard_exact(k1, n1, k2, n2, alt))
    for pooled in (True, False):
        for alt in ALTERNATIVES:
            out.append(ztest_2prop(k1, n1, k2, n2, alt, pooled=pooled))
    out.append(chi2_2x2(k1, n1, k2, n2, correction=False))
    out.append(chi2_2x2(k1, n1, k2, n2, correction=True))
    if (paired_b is None) != (paired_c is None):
        _raise(
            [
                Problem(
                    "give both paired_b and paired_c, or neither",
                    field="paired_c" if paired_c is None else "paired_b",
                    value=None,
                )
            ]
        )
    if paired_b is not None and paired_c is not None:  # both or neither: checked above
        for alt in ALTERNATIVES:
            ex = mcnemar_exact(paired_b, paired_c, alt)
            out.append(ex)
            out.append(
                TestResult(
                    NAN,
                    ex.details["mid_p"],
                    "mcnemar-mid-p",
                    alt,
                    ex.n,
                    None,
                    {
                        "b": ex.details["b"],
                        "c": ex.details["c"],
                        "impl": "hand-written from scipy.stats.binom (Fagerland et al. 2013)",
                    },
                )
            )
        for corr in (False, True):
            for alt in ALTERNATIVES:
                out.append(mcnemar_chi2(paired_b, paired_c, correction=corr, alternative=alt))
    return out


# --------------------------------------------------------------------------------------------------------------
# AUC


def auc_mann_whitney(pos_scores: Any, neg_scores: Any, alternative: str = "greater") -> TestResult:
    """Test of AUC = 0.5 via Mann–Whitney U; ``statistic`` = AUC = U / (n_pos · n_neg).

    Mann & Whitney (1947); AUC = U/(n1 n2) per Hanley & McNeil (1982), Radiology 143:29. p from
    ``scipy.stats.mannwhitneyu(pos, neg, method="auto")`` (exact without ties at small n, else normal with tie
    correction). "greater" = positives score higher (AUC > 0.5). Use this, not a DeLong z, for "better than
    chance": DeLong's z at AUC = 0.5 is anti-conservative at small n. An empty group gives NaN with a reason.
    """
    problems: list[Problem] = []
    pos = _vector("pos_scores", pos_scores, problems)
    neg = _vector("neg_scores", neg_scores, problems)
    _check_alternative(alternative, problems)
    _raise(problems)
    method = "mann-whitney-auc"
    details: dict[str, Any] = {"n_pos": pos.size, "n_neg": neg.size, "impl": _impl("scipy", "scipy.stats.mannwhitneyu")}
    n = pos.size + neg.size
    if pos.size == 0 or neg.size == 0:
        return _nan_test(method, alternative, n, "need at least one positive and one negative score", details)
    from scipy.stats import mannwhitneyu

    res = mannwhitneyu(pos, neg, alternative=alternative, method="auto")
    u = float(res.statistic)
    details["U"] = u
    p = float(res.pvalue)
    if not math.isfinite(p):
        return TestResult(
            u / (pos.size * neg.size),
            NAN,
            method,
            alternative,
            n,
            "scipy mannwhitneyu returned a non-finite p",
            details,
        )
    return TestResult(u / (pos.size * neg.size), p, method, alternative, n, None, details)


def auc_delong(pos_scores: Any, neg_scores: Any, level: float = 0.95) -> Estimate:
    """AUC with DeLong's variance and a CI on the logit scale, so that it lies inside [0, 1].

    DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837. statsmodels ``rank_compare_2indep(pos, neg,
    use_t=False)``: ``prob1`` = P(pos > neg) + ½P(tie) = AUC, ``var_prob`` = DeLong variance (``se`` is its root).
    The interval is logit(A) ± z·SE / (A(1 − A)) (delta method), back-transformed with the logistic function
    (Pepe 2003, *The Statistical Evaluation of Medical Tests for Classification and Prediction*; compared with
    the untransformed Wald interval by Qin & Hotilovac 2008, Stat Methods Med Res 17:207): the normal interval
    A ± z·SE can leave [0, 1] near the boundary (0.895 ± 0.144 → [0.751, 1.039]). Reference: Hanley & McNeil CT
    data → AUC 0.8932, SE 0.03072, logit-scale 95% CI [0.8164, 0.9402] (the normal one is [0.8330, 0.9534]).
    Fewer than 2 scores in a group, zero variance, or an AUC of exactly 0 or 1 (perfect separation, where the logit
    is infinite) gives NaN bounds with a reason: never a zero-width or out-of-range interval.
    """
    problems: list[Problem] = []
    pos = _vector("pos_scores", pos_scores, problems)
    neg = _vector("neg_scores", neg_scores, problems)
    level = _check_level(level, problems)
    _raise(problems)
    method = "delong"
    n = pos.size + neg.size
    details: dict[str, Any] = {
        "n_pos": pos.size,
        "n_neg": neg.size,
        "impl": _impl("statsmodels", "statsmodels.stats.nonparametric.rank_compare_2indep"),
    }
    if pos.size < 2 or neg.size < 2:
        return _nan_estimate(
            method, n, level, "DeLong variance needs at least 2 positive and 2 negative scores", details=details
        )
    from statsmodels.stats.nonparametric import rank_compare_2indep

    with np.errstate(divide="ignore", invalid="ignore"):  # zero variance is detected and reported below
        res = rank_compare_2indep(pos, neg, use_t=False)
    auc = float(res.prob1)
    var = float(res.var_prob)
    if not (var > 0.0) or not (0.0 < auc < 1.0):
        return _nan_estimate(
            method,
            n,
            level,
            f"AUC = {auc:.6g} with DeLong variance {var:.3g}: zero variance or "
            "perfect separation (AUC 0 or 1); the logit-scale interval is undefined and a "
            "zero-width one would be false",
            value=auc,
            details=details,
        )
    se = math.sqrt(var)
    half = _z_two_sided(level) * se / (auc * (1.0 - auc))
    centre = math.log(auc / (1.0 - auc))
    details["se_logit"] = se / (auc * (1.0 - auc))
    return Estimate(
        auc,
        Interval(_expit(centre - half), _expit(centre + half), level, "delong-logit"),
        se,
        n,
        method,
        details=details,
    )


def _expit(x: float) -> float:
    """The logistic function, written to avoid overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982), Radiology 143:29: SE of an AUC from the exponential approximation
    Q1 = A/(2 − A), Q2 = 2A²/(1 + A). Hand-written (no library). For comparing with papers that used it; prefer
    `auc_delong`. NaN when a group is empty."""
    problems: list[Problem] = []
    n_pos = _as_count("n_pos", n_pos, problems)
    n_neg = _as_count("n_neg", n_neg, problems)
    if not (isinstance(auc, numbers.Real) and 0.0 <= auc <= 1.0):
        problems.append(Problem("must lie in [0, 1]", field="auc", value=auc))
    _raise(problems)
    if n_pos == 0 or n_neg == 0:
        return NAN
    a = float(auc)
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


# --------------------------------------------------------------------------------------------------------------
# Comparing two AUCs: DeLong structural components, paired and unpaired


def structural_components(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values: V10[i] = P(neg < pos_i) + ½P(tie), V01[j] = P(pos > neg_j) + ½P(tie).

    From midranks (Sun & Xu 2014, IEEE SPL 21:1389), O((m+n) log(m+n)): V10 = (rank of pos_i among all − rank
    among positives) / n and V01 = 1 − (rank of neg_j among all − rank among negatives) / m.
    mean(V10) = mean(V01) = AUC.
    """
    from scipy.stats import rankdata

    pos = np.asarray(pos, dtype=float)
    neg = np.asarray(neg, dtype=float)
    m, n = pos.size, neg.size
    tz = rankdata(np.concatenate([pos, neg]))
    v10 = (tz[:m] - rankdata(pos)) / n
    v01 = 1.0 - (tz[m:] - rankdata(neg)) / m
    return v10, v01


def delong_covariance(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and DeLong covariance matrix of k score sets on the same cases.

    ``pos`` is k × m (scores of the m positive cases under each of the k sets), ``neg`` k × n. Returns (aucs, S) with
    S = S10/m + S01/n, S10 and S01 the sample covariances (n − 1 denominator) of the structural components
    (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44:837, eqs. 3–5). For k = 1 S is DeLong's variance, which
    equals statsmodels ``rank_compare_2indep(...).var_prob``. Hand-written: scipy and statsmodels offer no paired
    DeLong covariance.
    """
    pos = np.atleast_2d(np.asarray(pos, dtype=float))
    neg = np.atleast_2d(np.asarray(neg, dtype=float))
    m, n = pos.shape[1], neg.shape[1]
    v10 = np.empty_like(pos)
    v01 = np.empty_like(neg)
    for r in range(pos.shape[0]):
        v10[r], v01[r] = structural_components(pos[r], neg[r])
    aucs = v10.mean(axis=1)
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return aucs, s10 / m + s01 / n


@dataclass(frozen=True)
class AucComparison:
    """AUC_a − AUC_b with its SE, CI and two-sided z-test (paired DeLong or unpaired z)."""

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    p_value: float
    interval: Interval
    method: str
    n_pos: int
    n_neg: int
    var_a: float = math.nan
    var_b: float = math.nan
    cov: float = math.nan
    correlation: float = math.nan
    reason: str | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _to_dict(self)


def delong_paired(scores_a: Any, scores_b: Any, labels: Any, level: float = 0.95) -> AucComparison:
    """DeLong's test of AUC_a = AUC_b for two score sets on the same cases (aligned arrays, labels 0/1).

    z = (A_a − A_b) / sqrt(S_aa + S_bb − 2 S_ab), two-sided normal p; CI diff ± z_{1−α/2}·SE (DeLong et al. 1988).
    NaN with a reason when a class has fewer than 2 cases or the variance of the difference is zero.
    """
    from scipy.stats import norm

    a = np.asarray(scores_a, dtype=float)
    b = np.asarray(scores_b, dtype=float)
    y = np.asarray(labels, dtype=int)
    method = "delong-paired"
    m, n = int((y == 1).sum()), int((y == 0).sum())
    if m < 2 or n < 2:
        reason = "the paired DeLong test needs at least 2 positive and 2 negative shared items"
        return AucComparison(
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            Interval.nan(level, method, reason),
            method,
            m,
            n,
            reason=reason,
        )
    aucs, s = delong_covariance(np.vstack([a[y == 1], b[y == 1]]), np.vstack([a[y == 0], b[y == 0]]))
    diff = float(aucs[0] - aucs[1])
    var = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    corr = float(s[0, 1] / math.sqrt(s[0, 0] * s[1, 1])) if s[0, 0] > 0 and s[1, 1] > 0 else math.nan
    common: dict[str, Any] = dict(var_a=float(s[0, 0]), var_b=float(s[1, 1]), cov=float(s[0, 1]), correlation=corr)
    if not var > 1e-15:
        reason = "the DeLong variance of the difference is zero (identical rankings or perfect separation)"
        return AucComparison(
            float(aucs[0]),
            float(aucs[1]),
            diff,
            math.nan,
            math.nan,
            math.nan,
            Interval.nan(level, method, reason),
            method,
            m,
            n,
            reason=reason,
            **common,
        )
    se = math.sqrt(var)
    z = diff / se
    q = float(norm.ppf(0.5 + level / 2))
    return AucComparison(
        float(aucs[0]),
        float(aucs[1]),
        diff,
        se,
        z,
        float(2 * norm.sf(abs(z))),
        Interval(diff - q * se, diff + q * se, level, method),
        method,
        m,
        n,
        **common,
    )


def delong_unpaired(a: Estimate, b: Estimate, level: float = 0.95) -> AucComparison:
    """z-test of AUC_a = AUC_b for independent sets: z = (A_a − A_b) / sqrt(SE_a² + SE_b²) with DeLong SEs
    (``a`` and ``b`` from :func:`auc_delong`)."""
    from scipy.stats import norm

    method = "delong-unpaired-z"
    n_pos = int(a.details.get("n_pos", 0)) + int(b.details.get("n_pos", 0))
    n_neg = int(a.details.get("n_neg", 0)) + int(b.details.get("n_neg", 0))
    diff = a.value - b.value
    if not (math.isfinite(a.se) and math.isfinite(b.se)) or a.se**2 + b.se**2 <= 0:
        reason = "a DeLong variance could not be computed: " + (a.reason or b.reason or "zero variance")
        return AucComparison(
            a.value,
            b.value,
            diff,
            math.nan,
            math.nan,
            math.nan,
            Interval.nan(level, method, reason),
            method,
            n_pos,
            n_neg,
            reason=reason,
        )
    se = math.sqrt(a.se**2 + b.se**2)
    z = diff / se
    q = float(norm.ppf(0.5 + level / 2))
    return AucComparison(
        a.value,
        b.value,
        diff,
        se,
        z,
        float(2 * norm.sf(abs(z))),
        Interval(diff - q * se, diff + q * se, level, method),
        method,
        n_pos,
        n_neg,
        var_a=a.se**2,
        var_b=b.se**2,
        cov=0.0,
        correlation=0.0,
    )


# --------------------------------------------------------------------------------------------------------------
# Metric-dependent emergence


def _check_p_L(p: Any, L: Any) -> np.ndarray:
    problems: list[Problem] = []
    arr = np.asarray(p, dtype=float)
    if np.any(~((arr >= 0) & (arr <= 1))):
        problems.append(Problem("per-token accuracy must lie in [0, 1]", field="p", value=p))
    if isinstance(L, bool) or not isinstance(L, numbers.Integral) or L < 1:
        problems.append(Problem("target length must be an integer >= 1", field="L", value=L))
    _raise(problems)
    return arr


def exact_match_from_token_accuracy(p: float | Any, L: int) -> float | np.ndarray:
    """Predicted exact match of an L-token target from per-token accuracy p with independent errors: p**L.

    Schaeffer, Miranda & Koyejo (2023), "Are Emergent Abilities of Large Language Models a Mirage?",
    arXiv:2304.15004. Hand-written (one line). Scalar in, float out; array in, array out.
    """
    arr = _check_p_L(p, L)
    out = arr ** int(L)
    return float(out) if out.ndim == 0 else out


def edit_distance_from_token_accuracy(p: float | Any, L: int) -> float | np.ndarray:
    """Expected token edit distance L(1 − p) under the same model (Schaeffer et al. 2023, arXiv:2304.15004):
    the continuous counterpart of `exact_match_from_token_accuracy`."""
    arr = _check_p_L(p, L)
    out = int(L) * (1.0 - arr)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------------------------
# Decision inference for a paired delta: one test and the interval that inverts it


@dataclass(frozen=True)
class PairedInference:
    """The inference every verdict rests on: a delta, a two-sided test of delta = 0 and the interval that inverts
    that same test, so the p-value and the interval shown together never disagree (the interval excludes 0 exactly
    when p < 1 − level). `p_value` tests any other null (a reported delta, a materiality margin) with the same
    statistic, so a one-sided test at α/2 agrees with the two-sided interval's bound.

    Three designs (``method``):

    - ``score`` — paired 0/1 outcomes: McNemar's test with Edwards' (1948) continuity correction and Tango's (1998,
      Stat Med 17:891) asymptotic score interval for the difference of paired proportions with the same correction,
      which inverts it: Tango's statistic at delta = 0 is McNemar's z = (b − c)/√(b + c), and the correction moves
      it one pair towards the null on each side. The uncorrected score test (Fagerland, Lydersen & Laake 2013, BMC
      Med Res Methodol 13:91) over-rejects with few discordant pairs; the correction keeps the size at or below
      nominal (benchmarks/calibrate.py). b + c = 0 gives p = 1 (the arms agree on every item).
    - ``paired-t-hall`` — other scores: the paired t-test (Student 1908) joined with Hall's (1992) bootstrap-calibrated
      skewness-corrected t (see `skew_t_inference`): a one-sided test rejects only where both reject, and the interval
      is the union of their two intervals, so it inverts the joint test exactly. The t keeps its size under symmetric
      heavy tails (where a bootstrap-t over-rejects); Hall's statistic under skew (where the t over-rejects on the
      side away from the long tail: 15–18% instead of 2.5% at n = 30 in benchmarks/calibrate.py's skewed cell).
    - ``cluster-t`` — items that share a passage or template: the CR2 cluster-robust SE of the mean difference with a
      t reference on Bell–McCaffrey degrees of freedom (`clustered_cr2`; Bell & McCaffrey 2002, Imbens & Kolesár
      2016). CR1 with C − 1 df (Cameron & Miller 2015) holds only for equal clusters: with one cluster of 200 items
      and four of 10 it called a gain confined to the big cluster significant (p = 0.009) where CR2 gives p = 0.20.
      With equal cluster sizes CR2 + BM is exactly CR1 + t(C − 1), the one-sample t-test on cluster means.
    """

    estimate: Estimate
    test: TestResult
    method: str
    stats: dict = field(default_factory=dict)
    # paired-t-hall: the sorted bootstrap distribution of Hall's statistic and what `p_value` needs to evaluate it at
    # another null. Kept out of to_dict (thousands of numbers); the summary is in ``stats``.
    null_distribution: Any = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> float:
        return self.estimate.value

    @property
    def interval(self) -> Interval:
        return self.estimate.interval

    def p_value(self, null: float = 0.0, alternative: str = "two-sided") -> float:
        """p of H0: delta = ``null`` ("greater": H1 delta > null; "less": H1 delta < null), same statistic as the
        interval, so the two-sided interval at level 1 − α excludes ``null`` exactly when the one-sided p < α/2."""
        from scipy.stats import norm
        from scipy.stats import t as student

        s = self.stats
        if self.method == "mn-score":
            return _mn_score_p(s["k1"], s["n1"], s["k2"], s["n2"], float(null), alternative)
        if self.method == ANYTIME_METHOD:
            return _anytime_p(self.null_distribution, self.stats, float(null), alternative)
        if self.method == SKEW_T_METHOD:
            if self.null_distribution is None:
                return NAN  # no variance: the statistic is undefined
            lower, upper = _skew_t_tails(self, float(null))
            if alternative == "greater":
                return upper
            if alternative == "less":
                return lower
            return min(1.0, 2.0 * min(lower, upper))
        if self.method == "score":
            cc = float(s.get("cc", 0.0))
            z_up = _tango_z(s["b"], s["c"], s["n"], float(null), -cc)  # evidence that delta > null
            z_lo = _tango_z(s["b"], s["c"], s["n"], float(null), +cc)  # evidence that delta < null
            if z_up is None or z_lo is None:
                return 1.0  # 0/0: the arms agree on every item, no evidence either way
            upper, lower = float(norm.sf(z_up)), float(norm.cdf(z_lo))
        else:
            se, df = s.get("se", NAN), s.get("df", NAN)
            if not (se > 0) or not (df > 0):
                return NAN
            tt = (self.value - float(null)) / se
            lower, upper = float(student.cdf(tt, df)), float(student.sf(tt, df))
        if alternative == "greater":
            return upper
        if alternative == "less":
            return lower
        return min(1.0, 2.0 * min(lower, upper))

    def to_dict(self) -> dict:
        return {
            "estimate": self.estimate.to_dict(),
            "test": self.test.to_dict(),
            "method": self.method,
            "stats": _plain(self.stats),
        }


def _tango_q(b: int, c: int, n: int, delta: float) -> float:
    """Constrained MLE of the baseline-only cell probability given treatment-only − baseline-only = delta
    (Tango 1998, eq. for p̃21): the larger root of 2n q² − B q − c·delta·(1 − delta) = 0, B = (b + c) −
    delta·(2n − b + c)."""
    B = (b + c) - delta * (2 * n - b + c)
    disc = B * B + 8.0 * n * c * delta * (1.0 - delta)
    return (B + math.sqrt(max(disc, 0.0))) / (4.0 * n)


def _tango_z(b: int, c: int, n: int, delta: float, shift: float = 0.0) -> float | None:
    """Tango's score statistic (b − c − n·delta + shift) / √(n(2q̃ + delta(1 − delta))); None where it is 0/0.
    ``shift`` = −cc or +cc applies a continuity correction of cc pairs towards the null on one side."""
    num = b - c - n * delta + shift
    var = n * (2.0 * _tango_q(b, c, n, delta) + delta * (1.0 - delta))
    if var <= 0.0:
        if abs(b - c - n * delta) <= 1e-12:
            return None
        return math.copysign(math.inf, num)
    return num / math.sqrt(var)


def tango_interval(b: int, c: int, n: int, level: float = 0.95, correction: float = 0.0) -> Interval:
    """Tango's (1998) asymptotic score interval for the difference of paired proportions (b − c)/n.

    b = treatment-only passes, c = baseline-only passes, n pairs. The bounds solve T(delta) = ±z_{(1+level)/2}
    (scipy.optimize.brentq on the monotone statistic); they lie in [−1, 1]. ``correction`` (in pairs; 1 = Edwards'
    continuity correction) moves the statistic ``correction`` pairs towards each bound, so the interval inverts
    McNemar's test with that correction: it excludes 0 exactly when (|b − c| − correction)/√(b + c) > z.
    Hand-written: neither scipy nor statsmodels offers a paired-difference score interval. Reference
    implementations: R PropCIs::scoreci.mp, ratesci::scorepairci(skew = FALSE, bcf = FALSE, cc = ...).
    """
    problems: list[Problem] = []
    b, c = _bc(b, c, problems)
    n = _as_count("n", n, problems)
    level = _check_level(level, problems)
    if not problems and n < b + c:
        problems.append(Problem("fewer pairs than discordant pairs", field="n", value=n, fix="n >= b + c"))
    _raise(problems)
    method = "tango-score" + ("-cc" if correction else "")
    if n == 0:
        return Interval.nan(level, method, "no pairs")
    from scipy.optimize import brentq

    z = _z_two_sided(level)
    est = (b - c) / n
    eps = 1e-12

    def f(d: float, shift: float) -> float:
        t = _tango_z(b, c, n, d, shift)
        return 0.0 if t is None else t

    lo_edge, hi_edge = -1.0 + eps, 1.0 - eps
    # T decreases in delta: the lower bound solves T − cc = z below the estimate, the upper T + cc = −z above it.
    if f(lo_edge, -correction) - z <= 0:
        low = -1.0
    elif f(min(est, hi_edge), -correction) - z >= 0:
        low = min(est, hi_edge)
    else:
        low = float(brentq(lambda d: f(d, -correction) - z, lo_edge, min(est, hi_edge), xtol=1e-12))
    if f(hi_edge, correction) + z >= 0:
        high = 1.0
    elif f(max(est, lo_edge), correction) + z <= 0:
        high = max(est, lo_edge)
    else:
        high = float(brentq(lambda d: f(d, correction) + z, max(est, lo_edge), hi_edge, xtol=1e-12))
    return Interval(low, high, level, method)


def paired_inference(
    baseline: Any,
    treatment: Any,
    level: float = 0.95,
    clusters: Any = None,
    outcomes: str = "auto",
    rng: np.random.Generator | None = None,
    score_bounds: tuple[float, float] | None = None,
) -> PairedInference:
    """The decision inference for delta = mean(treatment − baseline): see `PairedInference` for the three designs
    (chosen here: ``clusters`` given → cluster-t; every value 0/1 → score; else paired-t-hall). ``outcomes="scores"``
    forces the t designs even when every value happens to be 0/1 (e.g. per-item gains that are never negative).
    ``rng`` drives the bootstrap of the paired-t-hall design; by default a generator is derived from the data
    (`skew_t_inference`), so the same data always give the same result. ``score_bounds``: the range every score
    lies in (default: [0, 1], widened to every observed score — `score_range`); the paired-t-hall design uses it
    when the differences are too skewed for their number."""
    bl, tr = _paired(baseline, treatment)
    problems: list[Problem] = []
    level = _check_level(level, problems)
    if rng is not None and not isinstance(rng, np.random.Generator):
        problems.append(Problem("must be a numpy.random.Generator or None", field="rng", value=type(rng).__name__))
    lo, hi = score_range(bl, tr, score_bounds, problems)
    _raise(problems)
    n = bl.size
    d = tr - bl
    value = float(d.mean()) if n else NAN
    if clusters is not None:
        return _cluster_t(d, np.asarray(clusters), level, value)
    binary = bool(n) and bool(np.all(((bl == 0) | (bl == 1)) & ((tr == 0) | (tr == 1))))
    if binary and n >= 2 and outcomes != "scores":
        b = int(np.count_nonzero((bl == 0) & (tr == 1)))
        c = int(np.count_nonzero((bl == 1) & (tr == 0)))
        return score_inference(b, c, n, level)
    return skew_t_inference(d, level, rng=rng, bounds=(lo - hi, hi - lo))


def score_range(
    baseline: np.ndarray, treatment: np.ndarray, declared: tuple[float, float] | None, problems: list[Problem]
) -> tuple[float, float]:
    """The range the scores lie in: ``declared`` (a Problem names the first score outside it), else [0, 1] — the
    range of every scorer the audit computes — widened to hold every observed score (a logged metric on another
    scale: its observed range is then taken for its range, which can only be too narrow where the logs miss the
    metric's extremes)."""
    scores = np.concatenate([baseline, treatment]) if baseline.size else baseline
    finite = scores[np.isfinite(scores)] if scores.size else scores
    if declared is not None:
        lo, hi = (float(declared[0]), float(declared[1]))
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            problems.append(
                Problem(
                    "need two finite numbers, the lower first",
                    field="score_bounds",
                    value=list(declared),
                    fix="e.g. score_bounds: [0, 1]",
                )
            )
            return 0.0, 1.0
        outside = np.flatnonzero((finite < lo) | (finite > hi)) if finite.size else finite
        if len(outside):
            problems.append(
                Problem(
                    f"a score lies outside the declared range [{lo:g}, {hi:g}]: {float(finite[outside[0]])!r}",
                    field="score_bounds",
                    value=list(declared),
                    fix="declare the metric's true range, e.g. [0, 100] for chrF or BLEU",
                )
            )
        return lo, hi
    if not finite.size:
        return 0.0, 1.0
    return min(0.0, float(finite.min())), max(1.0, float(finite.max()))


SKEW_T_METHOD = "paired-t-hall"
# Bootstrap resamples of Hall's statistic: (B + 1)·α/2 is a whole number at α = 0.05 and 0.01, and the Monte Carlo SD
# of a p near 0.025 is about 0.003.
SKEW_T_RESAMPLES = 2999
# Above this many paired items with many distinct differences, Hall's statistic is referred to the normal
# distribution instead of its bootstrap (the skewness term it removes is O(1/√n); the bootstrap would cost n × B).
SKEW_T_BOOTSTRAP_MAX_N = 5000


def _hall_g(s: Any, gamma: Any, n: int) -> Any:
    """Hall's (1992) monotone cubic transformation of the studentized mean S = (x̄ − μ)/σ̂:
    g(S) = S + γS²/3 + γ²S³/27 + γ/(6n) = ((1 + γS/3)³ − 1)/γ + γ/(6n); √n·g(S) is N(0, 1) up to O(1/n) where √n·S
    has an O(1/√n) skewness error."""
    return s + gamma * s * s / 3.0 + gamma * gamma * s**3 / 27.0 + gamma / (6.0 * n)


def _hall_g_inv(v: float, gamma: float, n: int) -> float:
    """The S with g(S) = v, in closed form: with y = γ(v − γ/(6n)) and c = ∛(1 + y),
    S = 3(c − 1)/γ = 3(v − γ/(6n))/(c² + c + 1), the last form exact also as γ → 0."""
    if not math.isfinite(v):
        return v
    x = v - gamma / (6.0 * n)
    c = float(np.cbrt(1.0 + gamma * x))
    return 3.0 * x / (c * c + c + 1.0)


def _data_rng(d: np.ndarray) -> np.random.Generator:
    """A generator seeded from the data: SHA-256 of |d| (float64, item order), so the same data always give the
    same resamples, and swapping the arms (d → −d) draws the same item indices and mirrors the result exactly."""
    import hashlib

    digest = hashlib.sha256(np.ascontiguousarray(np.abs(d), dtype=np.float64).tobytes()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _hall_replicates(e: np.ndarray, rng: np.random.Generator, resamples: int) -> tuple[np.ndarray, str]:
    """Bootstrap replicates of Hall's statistic √n·g((x̄* − x̄)/σ̂*, γ̂*) for centred differences ``e`` (mean 0).
    Multinomial counts over the distinct values when they are few (as `paired_bootstrap_delta`), else index draws in
    chunks. A replicate with σ̂* = 0 (all resampled values equal) is ±inf by the sign of x̄* − x̄."""
    n = e.size
    uniq, first, inverse = np.unique(e, return_index=True, return_inverse=True)
    if uniq.size <= _GROUPED_MAX_DISTINCT and 4 * uniq.size <= n:
        order = np.argsort(first, kind="stable")
        w = uniq[order]
        counts = np.bincount(inverse.ravel(), minlength=uniq.size)[order]
        draws = rng.multinomial(n, counts / n, size=resamples).astype(float) / n
        m = draws @ w
        s2 = draws @ (w * w)
        s3 = draws @ (w**3)
        var = np.maximum(s2 - m * m, 0.0)
        mu3 = s3 - 3.0 * m * s2 + 2.0 * m**3
        sampler = "multinomial"
    else:
        m = np.empty(resamples)
        var = np.empty(resamples)
        mu3 = np.empty(resamples)
        rows = max(1, min(resamples, _CHUNK_ELEMENTS // n))
        dtype = np.int32 if n < 2**31 else np.int64
        for start in range(0, resamples, rows):
            k = min(rows, resamples - start)
            x = e[rng.integers(0, n, size=(k, n), dtype=dtype)]
            mk = x.mean(axis=1)
            x -= mk[:, None]
            m[start : start + k] = mk
            var[start : start + k] = np.einsum("ij,ij->i", x, x) / n
            mu3[start : start + k] = np.einsum("ij,ij,ij->i", x, x, x) / n
        sampler = "index"
    scale = float(np.mean(e * e))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sd = np.sqrt(var)
        ok = var > 1e-12 * scale
        t = np.where(ok, m / sd, 0.0)
        g = np.where(ok, mu3 / sd**3, 0.0)
        stat = math.sqrt(n) * _hall_g(t, g, n)
    stat = np.where(ok, stat, np.where(m > 0, np.inf, np.where(m < 0, -np.inf, 0.0)))
    return np.sort(stat), sampler


# Skewness-corrected t (`skew_t_inference`): Hall's statistic.
#
# Hall (1992), "On the removal of skewness by transformation", JRSS B 54:221: with σ̂² = Σ(dᵢ − d̄)²/n,
# γ̂ = Σ(dᵢ − d̄)³/(nσ̂³) and S(μ) = (d̄ − μ)/σ̂, the statistic T(μ) = √n·g(S(μ)) with the monotone cubic
# g(S) = S + γ̂S²/3 + γ̂²S³/27 + γ̂/(6n) (`_hall_g`) removes the skewness term of the t statistic, and referring it
# to its own bootstrap distribution (T* = √n·g*((d̄* − d̄)/σ̂*), γ̂* per resample) removes the rest to higher order
# — the combination Zhou & Dinh (2005, Biostatistics 6:187) found most accurate for skewed data. Its one-sided p
# at μ is (1 + #{T* ≥ T(μ)})/(B + 1) ("greater"), (1 + #{T* ≤ T(μ)})/(B + 1) ("less"); its interval is
# d̄ − σ̂·g⁻¹(q/√n) at the matching order statistics q of T* (`_hall_g_inv`, closed form), so it inverts the test.


def skew_t_inference(
    differences: Any,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    resamples: int = SKEW_T_RESAMPLES,
    bounds: tuple[float, float] | None = None,
) -> PairedInference:
    """Inference on the mean of paired differences that holds its one-sided level under skew: the paired t-test
    joined with Hall's bootstrap-calibrated skewness-corrected t (Hall 1992; the statistic, its p and its interval:
    see the notes above this function).

    The decision joins it with the paired t-test (t on n − 1 df): a one-sided p is the larger of the two, a
    two-sided p twice the smaller of the one-sided ones, and the interval is the union of the t interval and Hall's
    — it excludes μ exactly when both tests reject. A bootstrap-t over-rejects under symmetric heavy tails (t₃:
    about 4% per tail at n = 30) where the t-test holds; the t over-rejects under skew where Hall's statistic holds
    better (the lower tail of differences with 15% of items gaining Exp(1), offset to mean 0: t 17–18%, joined test
    3–6% at n = 30, 2–3% at n = 100; benchmarks/calibrate.py). Neither is exact at n = 30 with a skewness of 5: no
    test of a mean can be without bounds on the scores (Bahadur & Savage 1956).

    Too skewed for their number (n < 25·γ̂², Cochran's rule for the normal approximation of a mean: Cochran 1977,
    Sampling Techniques, §2.15), the differences may lack the long tail's share of items — at n = 30 with 15% of
    items gaining a lot, 5% of samples hold one such item or none — and no statistic of the sample can see what it
    lacks. The side of the long tail (the upper bound when γ̂ > 0: "the mean is below μ") then also needs the
    betting test for a bounded mean (`audit.sequential`, Waudby-Smith & Ramdas 2024), valid for any distribution
    within ``bounds`` (the differences' range; default [−1, 1] widened to the observed differences): its one-sided p
    joins the other two and its bound widens the interval on that side. ``stats["long_tail"]`` names the side (None
    when the rule holds) with ``long_tail_n_needed`` and ``bounds``.

    Randomness: ``rng`` if given, else a generator seeded from the data (`_data_rng`): deterministic, and swapping
    the arms mirrors the result exactly. B = ``resamples`` (default 2999); the distinct-value multinomial shortcut
    of `paired_bootstrap_delta` makes discrete differences cheap at any n. Above `SKEW_T_BOOTSTRAP_MAX_N` items with
    many distinct values, Hall's statistic is referred to the standard normal instead (no resampling;
    ``stats["hall_reference"]`` says which). Hand-written: scipy.stats.bootstrap offers the percentile and BCa
    intervals, which do worse here (BCa: 10–13% in the same lower tail at n = 30).
    """
    problems: list[Problem] = []
    d = _vector("differences", differences, problems)
    level = _check_level(level, problems)
    _raise(problems + _skew_t_arg_problems(rng, resamples))
    from scipy.stats import t as student

    method = SKEW_T_METHOD
    n = d.size
    value = float(d.mean()) if n else NAN
    sd = float(np.std(d, ddof=1)) if n >= 2 else NAN
    se = sd / math.sqrt(n) if n >= 2 else NAN
    st: dict[str, Any] = {"n": n, "se": se, "df": n - 1, "sd_diff": sd}
    # A spread at the level of float rounding (0.3 − 0.2 vs 0.5 − 0.4) is no variance.
    if not (se > 0) or sd <= 1e-12 * float(np.max(np.abs(d))):
        reason = (
            f"n = {n} paired item(s): need at least 2"
            if n < 2
            else "every paired difference is equal: the t statistic is undefined (zero variance)"
        )
        return PairedInference(
            _nan_estimate(method, n, level, reason, value=value),
            _nan_test(method, "two-sided", n, reason, {"df": n - 1}),
            method,
            st,
        )
    e = d - value
    sigma = float(math.sqrt(np.mean(e * e)))
    gamma = float(np.mean(e**3)) / sigma**3
    alpha = 1.0 - level
    q_t = float(student.ppf(1.0 - alpha / 2.0, n - 1))
    t_low, t_high = value - q_t * se, value + q_t * se
    resamples = int(resamples)
    crit_lo, crit_hi, null_dist, boot = _hall_reference(d, e, alpha, rng, resamples, st)
    h_low = value - sigma * _hall_g_inv(crit_hi / math.sqrt(n), gamma, n)
    h_high = value - sigma * _hall_g_inv(crit_lo / math.sqrt(n), gamma, n)
    null_dist.update(mean=value, sigma=sigma, gamma=gamma, n=n, se=se)
    st.update(skewness=gamma, t_ci_low=t_low, t_ci_high=t_high, hall_ci_low=h_low, hall_ci_high=h_high)
    low, high = _long_tail_widened(
        d, gamma, bounds, alpha, float(min(t_low, h_low)), float(max(t_high, h_high)), st, null_dist
    )
    impl = "scipy.stats.t (paired t) ∧ hand-written Hall (1992) skewness-corrected t, " + (
        f"bootstrap-calibrated ({resamples} resamples)" if boot else "normal reference"
    )
    return _skew_t_result(value, se, n, Interval(low, high, level, method), st, null_dist, impl)


def _skew_t_arg_problems(rng: Any, resamples: Any) -> list[Problem]:
    """:func:`skew_t_inference`'s ``rng`` and ``resamples`` checked."""
    problems: list[Problem] = []
    if rng is not None and not isinstance(rng, np.random.Generator):
        problems.append(Problem("must be a numpy.random.Generator or None", field="rng", value=type(rng).__name__))
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 99:
        problems.append(
            Problem(
                "need at least 99 resamples",
                field="resamples",
                value=resamples,
                fix=f"e.g. resamples={SKEW_T_RESAMPLES}",
            )
        )
    return problems


def _hall_reference(
    d: np.ndarray, e: np.ndarray, alpha: float, rng: np.random.Generator | None, resamples: int, st: dict[str, Any]
) -> tuple[float, float, dict[str, Any], bool]:
    """Hall's critical values (low, high), null-distribution record and whether bootstrapped; fills ``st``."""
    from scipy.stats import norm

    n = d.size
    n_distinct = int(np.unique(d).size)
    boot = n <= SKEW_T_BOOTSTRAP_MAX_N or (n_distinct <= _GROUPED_MAX_DISTINCT and 4 * n_distinct <= n)
    if not boot:
        crit_hi = float(norm.ppf(1.0 - alpha / 2.0))
        st.update(hall_reference="normal", hall_resamples=0)
        return -crit_hi, crit_hi, {"sorted": None}, False
    gen = rng if rng is not None else _data_rng(d)
    reps, sampler = _hall_replicates(e, gen, resamples)
    # One-sided p = (1 + #{T* beyond T})/(B + 1) < α/2 ⟺ at most r replicates beyond T.
    r = int(math.ceil(alpha / 2.0 * (resamples + 1) - 1.0 - 1e-9)) - 1
    if r >= 0:
        crit_hi, crit_lo = float(reps[resamples - 1 - r]), float(reps[r])
    else:  # too few resamples to reject at this level
        crit_hi, crit_lo = math.inf, -math.inf
    st.update(
        hall_reference="bootstrap",
        hall_resamples=resamples,
        hall_sampler=sampler,
        rng="given" if rng is not None else "derived from the data (SHA-256 of |d|)",
    )
    return crit_lo, crit_hi, {"sorted": reps}, True


def _long_tail_widened(
    d: np.ndarray,
    gamma: float,
    bounds: tuple[float, float] | None,
    alpha: float,
    low: float,
    high: float,
    st: dict[str, Any],
    null_dist: dict[str, Any],
) -> tuple[float, float]:
    """The interval widened on the long tail's side by the betting bound (Cochran's rule, `_long_tail`)."""
    tail, lo, hi = _long_tail(d, gamma, bounds)
    st.update(long_tail=tail, long_tail_n_needed=float(25.0 * gamma * gamma), bounds=[lo, hi])
    if tail is not None:
        null_dist.update(tail=tail, d=d, lo=lo, hi=hi, alpha_tail=alpha / 2.0)
        bound = _bounded_bound(d, lo, hi, alpha / 2.0, tail)
        st.update(bounded_bound=bound)
        low, high = (low, max(high, bound)) if tail == "upper" else (min(low, bound), high)
    return low, high


def _skew_t_result(
    value: float, se: float, n: int, iv: Interval, st: dict[str, Any], null_dist: dict[str, Any], impl: str
) -> PairedInference:
    """:func:`skew_t_inference`'s result: the estimate and the two-sided test of a zero mean by the joined rule."""
    from scipy.stats import t as student

    method = iv.method
    details = {"df": n - 1, "se": se, "impl": impl}
    inf = PairedInference(
        Estimate(value, iv, se, n, method, details={"df": n - 1}),
        TestResult(value / se, NAN, method, "two-sided", n, None, details),
        method,
        st,
        null_distribution=null_dist,
    )
    p = inf.p_value(0.0, "two-sided")
    lower, upper = _skew_t_tails(inf, 0.0)
    details.update(
        hall_statistic=_hall_stat(null_dist, 0.0),
        p_lower=lower,
        p_upper=upper,
        p_t=min(1.0, 2.0 * float(student.sf(abs(value / se), n - 1))),
    )
    return PairedInference(
        inf.estimate,
        TestResult(value / se, p, method, "two-sided", n, None, details),
        method,
        st,
        null_distribution=null_dist,
    )


def _hall_stat(nd: dict, null: float) -> float:
    return math.sqrt(nd["n"]) * float(_hall_g((nd["mean"] - null) / nd["sigma"], nd["gamma"], nd["n"]))


def _skew_t_tails(inf: PairedInference, null: float) -> tuple[float, float]:
    """(lower, upper) one-sided p of the joint test at ``null``: each the larger of the paired t's and Hall's."""
    from scipy.stats import norm
    from scipy.stats import t as student

    nd = inf.null_distribution
    s = inf.stats
    tt = (nd["mean"] - null) / nd["se"]
    t_lower, t_upper = float(student.cdf(tt, s["df"])), float(student.sf(tt, s["df"]))
    h = _hall_stat(nd, null)
    reps = nd["sorted"]
    if reps is None:
        h_lower, h_upper = float(norm.cdf(h)), float(norm.sf(h))
    else:
        b = reps.size
        below = int(np.searchsorted(reps, h, side="right"))  # #{T* ≤ h}
        above = b - int(np.searchsorted(reps, h, side="left"))  # #{T* ≥ h}
        h_lower, h_upper = (1.0 + below) / (b + 1.0), (1.0 + above) / (b + 1.0)
    lower, upper = max(t_lower, h_lower), max(t_upper, h_upper)
    tail = nd.get("tail")
    if tail == "upper":  # "below null" needs the bounded test too
        lower = max(lower, _bounded_p(nd["d"], nd["lo"], nd["hi"], null, "less", nd["alpha_tail"]))
    elif tail == "lower":
        upper = max(upper, _bounded_p(nd["d"], nd["lo"], nd["hi"], null, "greater", nd["alpha_tail"]))
    return lower, upper


def _long_tail(d: np.ndarray, gamma: float, bounds: tuple[float, float] | None) -> tuple[str | None, float, float]:
    """(the side of the long tail when n < 25·γ̂², else None; the differences' range): ``bounds`` widened to the
    observed differences, [−1, 1] when not given."""
    lo, hi = bounds if bounds is not None else (-1.0, 1.0)
    lo, hi = min(float(lo), float(d.min())), max(float(hi), float(d.max()))
    if not (d.size < 25.0 * gamma * gamma) or gamma == 0.0:
        return None, lo, hi
    return ("upper" if gamma > 0 else "lower"), lo, hi


def _bounded_p(d: np.ndarray, lo: float, hi: float, null: float, alternative: str, alpha: float) -> float:
    """One-sided p of the betting test for a bounded mean at ``null`` (`audit.sequential`): "less" tests H0 mean ≥
    null, "greater" H0 mean ≤ null. A null at or beyond a bound: 1 where every mean in [lo, hi] meets H0, 0 where
    only the point mass at the bound does (the observed differences, not all at that bound, rule it out)."""
    from audit.sequential import e_value

    if null <= lo:
        return 1.0 if alternative == "less" else 0.0
    if null >= hi:
        return 0.0 if alternative == "less" else 1.0
    # The bets of the fixed-n test (horizon n: the items are all there), tuned to the one-sided level α.
    return float(e_value(d, null, lo, hi, alternative, alpha=alpha, horizon=d.size).p_value)


def _bounded_bound(d: np.ndarray, lo: float, hi: float, alpha: float, tail: str) -> float:
    """The bound of the one-sided betting test at ``alpha`` on the ``tail`` side (the same fixed-n bets as
    `_bounded_p`): the largest null (upper) or the smallest (lower) it does not reject."""
    from audit.sequential import one_sided_bound

    return float(one_sided_bound(d, alpha, lo, hi, tail, horizon=d.size))


MCNEMAR_CORRECTION = 1.0


def score_inference(
    b: int, c: int, n: int, level: float = 0.95, correction: float = MCNEMAR_CORRECTION
) -> PairedInference:
    """`PairedInference` for paired 0/1 outcomes from the discordant counts: McNemar's test with Edwards' (1948)
    continuity correction, z = (|b − c| − 1)/√(b + c), and Tango's score interval with the same correction, which
    inverts it (see `tango_interval`). The correction keeps the test at or below its nominal size when there are few
    discordant pairs, where the uncorrected score test over-rejects (4 discordant pairs all one way give z = 2.0:
    a one-sided size of 6.25% against a nominal 2.5%)."""
    iv = tango_interval(b, c, n, level, correction=correction)
    method = "score"
    value = (b - c) / n if n else NAN
    se = math.sqrt(max((b + c) / n - value**2, 0.0) / n) if n else NAN
    st = {"b": b, "c": c, "n": n, "se": se, "cc": float(correction)}
    name = "mcnemar-cc" if correction else "mcnemar-score"
    details = {
        "b": b,
        "c": c,
        "continuity_correction": float(correction),
        "impl": "McNemar z (Edwards' continuity correction) = Tango (1998) score statistic at 0; scipy.stats.norm",
    }
    if b + c == 0:
        details["note"] = "no discordant pairs: the arms agree on every item, p = 1"
        test = TestResult(0.0, 1.0, name, "two-sided", n, None, details)
    else:
        from scipy.stats import norm

        z = math.copysign(max(abs(b - c) - correction, 0.0), b - c) / math.sqrt(b + c)
        test = TestResult(z, float(min(1.0, 2.0 * norm.sf(abs(z)))), name, "two-sided", n, None, details)
    est = Estimate(value, iv, se, n, iv.method)
    return PairedInference(est, test, method, st)


def _t_inference(
    method: str, value: float, se: float, df: float, n: int, level: float, st: dict, impl: str
) -> PairedInference:
    from scipy.stats import t as student

    q = float(student.ppf(0.5 + level / 2.0, df))
    iv = Interval(value - q * se, value + q * se, level, method)
    tt = value / se
    p = float(min(1.0, 2.0 * student.sf(abs(tt), df)))
    test = TestResult(tt, p, method, "two-sided", n, None, {"df": df, "se": se, "impl": impl})
    return PairedInference(Estimate(value, iv, se, n, method, details={"df": df}), test, method, st)


def clustered_cr2(values: Any, clusters: Any, level: float = 0.95) -> Estimate:
    """Mean of ``values`` with the CR2 cluster-robust SE and Bell–McCaffrey degrees of freedom.

    Bell & McCaffrey (2002), Survey Methodology 28:169 (the bias-reduced linearization, "CR2", and its
    Satterthwaite degrees of freedom); recommended for few and unequal clusters by Imbens & Kolesár (2016, Rev Econ
    Stat 98:701) and Cameron & Miller (2015, J Hum Resour 50:317, §VI.B); Pustejovsky & Tipton (2018, J Bus Econ
    Stat 36:672) give the same test for one coefficient. For the intercept-only model the general formulas close
    (hat matrix H = 11ᵀ/n, so H_gg = J/n and (I − H_gg)^(−1/2) scales the cluster's sum by a_g = (1 − n_g/n)^(−1/2)):

    - V_CR2 = Σ_g a_g² S_g² / n², S_g = Σ_{i∈g} (x_i − x̄): a cluster holding a share h_g of the items has its
      squared residual sum inflated by 1/(1 − h_g), which CR1's common factor C/(C − 1) does not do — with one
      dominant cluster its residual sum is nearly 0 by construction and CR1 understates the variance;
    - df = (tr M)² / tr(M²), M = GᵀΩG the Bell–McCaffrey matrix under Imbens & Kolesár's working model: items
      equicorrelated within a cluster, ρ estimated from the residuals (`_working_rho`, `_bell_mccaffrey_df`: the
      traces are sums over clusters, no C × C matrix). ρ = 0 gives Bell & McCaffrey's independence df
      (``details["df_independence"]``). With equal clusters a_g² = C/(C − 1): V_CR2 is CR1 (statsmodels' cluster SE)
      and df = C − 1 for any ρ, the t-test on cluster means; with one dominant cluster df falls towards 1. In
      benchmarks/calibrate.py's unequal-cluster null (lognormal sizes, a cluster random effect), ρ̂ lowers the
      two-sided rate at C = 10, n = 1000 from 5.7% (independence df) to 3.9% (1,500 replicates).

    Hand-written: statsmodels and linearmodels offer CR1 only, pyfixest CR1/CR3 with C − 1 df (tested against a
    direct matrix implementation of Bell & McCaffrey's formulas, eigendecomposition and all, in
    tests/test_stats.py). The interval is mean ± t_df · SE. ``details`` carries clusters, df, the largest cluster's
    share of the items and the CR1 SE. Fewer than 2 clusters, or a zero SE, gives NaN with a reason.
    """
    x, g, level = _clustered_args(values, clusters, level)
    method = "cluster-robust-cr2-bell-mccaffrey"
    n = x.size
    labels, codes = np.unique(g, return_inverse=True) if n else (np.empty(0), np.empty(0, dtype=int))
    codes = codes.ravel()
    n_clusters = int(labels.size)
    details: dict[str, Any] = {
        "clusters": n_clusters,
        "impl": "hand-written CR2 + Bell–McCaffrey df, Imbens–Kolesár working model (numpy)",
    }
    mean = float(x.mean()) if n else NAN
    if n_clusters < 2:
        return _nan_estimate(
            method,
            n,
            level,
            f"{n_clusters} cluster(s): need at least 2 for a clustered SE",
            value=mean,
            details=details,
        )
    sizes = np.bincount(codes, minlength=n_clusters).astype(float)
    share = sizes / n
    e = x - mean
    resid_sums = np.bincount(codes, weights=e, minlength=n_clusters)
    a2 = 1.0 / (1.0 - share)
    var = float(np.sum(a2 * resid_sums**2)) / (n * n)
    var_cr1 = float(np.sum(resid_sums**2)) / (n * n) * n_clusters / (n_clusters - 1)
    rho = _working_rho(e, resid_sums, sizes)
    df = _bell_mccaffrey_df(a2, sizes, n, rho)
    details.update(
        df=df,
        rho=rho,
        df_independence=_bell_mccaffrey_df(a2, sizes, n, 0.0),
        largest_cluster_share=float(share.max()),
        largest_cluster_items=int(sizes.max()),
        se_cr1=math.sqrt(var_cr1),
    )
    se = math.sqrt(var) if var > 0 else 0.0
    if not (se > 0.0) or not math.isfinite(df):
        return _nan_estimate(
            method,
            n,
            level,
            "clustered SE is zero (cluster sums of residuals all zero): the interval would be zero-width",
            value=mean,
            details=details,
        )
    from scipy.stats import t as student

    q = float(student.ppf(0.5 + level / 2.0, df))
    return Estimate(mean, Interval(mean - q * se, mean + q * se, level, method), se, n, method, details=details)


def _working_rho(e: np.ndarray, resid_sums: np.ndarray, sizes: np.ndarray) -> float:
    """Within-cluster correlation of the working model (Imbens & Kolesár 2016, §IV): the moment estimate
    Σ_g Σ_{i≠j∈g} eᵢeⱼ / Σ_g n_g(n_g − 1), over Σ eᵢ²/n, clipped to [0, 0.99]; 0 when no cluster has two items."""
    pairs = float(np.sum(sizes * (sizes - 1.0)))
    ss = float(np.dot(e, e))
    if pairs <= 0 or ss <= 0:
        return 0.0
    within = (float(np.dot(resid_sums, resid_sums)) - ss) / pairs
    return float(min(0.99, max(0.0, within / (ss / e.size))))


def _bell_mccaffrey_df(a2: np.ndarray, sizes: np.ndarray, n: int, rho: float) -> float:
    """Bell–McCaffrey degrees of freedom (tr M)²/tr(M²) of the CR2 variance of a mean, M = GᵀΩG with the working
    model Ω = (1 − ρ)I + ρ·(1 within a cluster) (Imbens & Kolesár 2016; ρ = 0 is Bell & McCaffrey's independence
    model). With N = diag(n_g), x = n_g/√n and K = N − xxᵀ, M ∝ diag(a)[(1 − ρ)K + ρK²]diag(a); written as a diagonal
    plus low-rank matrix, both traces are sums over clusters (no C × C matrix):
    Q = diag((1 − ρ)n_g + ρn_g²) + βxxᵀ − ρ(yxᵀ + xyᵀ), y = Nx, β = ρxᵀx − (1 − ρ); with α = a² and
    Sxx = Σαx², Syy = Σαy², Sxy = Σαxy: tr M ∝ Σα·diag(Q), tr M² ∝ Σα²q² + 2Σα²q·R_ii + β²Sxx² +
    2ρ²(SyySxx + Sxy²) − 4βρSxySxx (q the diagonal part, R the low-rank one)."""
    alpha = a2
    x = sizes / math.sqrt(n)
    y = sizes * x
    q = (1.0 - rho) * sizes + rho * sizes**2
    beta = rho * float(np.dot(x, x)) - (1.0 - rho)
    r_diag = beta * x * x - 2.0 * rho * y * x
    sxx, syy, sxy = float(np.sum(alpha * x * x)), float(np.sum(alpha * y * y)), float(np.sum(alpha * x * y))
    tr = float(np.sum(alpha * (q + r_diag)))
    tr2 = (
        float(np.sum(alpha**2 * q**2))
        + 2.0 * float(np.sum(alpha**2 * q * r_diag))
        + beta**2 * sxx**2
        + 2.0 * rho**2 * (syy * sxx + sxy**2)
        - 4.0 * beta * rho * sxy * sxx
    )
    return tr * tr / tr2 if tr2 > 0 else NAN


def _cluster_t(d: np.ndarray, clusters: np.ndarray, level: float, value: float) -> PairedInference:
    """The cluster-robust decision test: CR2 SE with Bell–McCaffrey df (`clustered_cr2`), a t reference."""
    method = "cluster-t"
    n = d.size
    if clusters.shape != d.shape:
        _raise(
            [Problem(f"need one cluster label per item ({n} items)", field="clusters", value=f"shape {clusters.shape}")]
        )
    est = clustered_cr2(d, clusters, level=level) if n else None
    n_clusters = int(est.details.get("clusters", 0)) if est is not None else 0
    st: dict[str, Any] = {"n": n, "clusters": n_clusters}
    if est is not None:
        st.update(
            {
                k: est.details[k]
                for k in ("df", "rho", "df_independence", "largest_cluster_share", "largest_cluster_items", "se_cr1")
                if k in est.details
            }
        )
    if est is None or est.reason:
        reason = est.reason if est is not None and est.reason else "no items"
        return PairedInference(
            _nan_estimate(method, n, level, reason, value=value),
            _nan_test(method, "two-sided", n, reason, {"clusters": n_clusters}),
            method,
            st,
        )
    st["se"] = est.se
    inf = _t_inference(
        method,
        value,
        est.se,
        st["df"],
        n,
        level,
        st,
        "hand-written CR2 + Bell–McCaffrey df with Imbens–Kolesár's working model + scipy.stats.t",
    )
    inf.test.details["clusters"] = n_clusters
    inf.estimate.details["clusters"] = n_clusters
    return inf


def holm_adjusted(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values keeping NaN in place (NaN tests take no part in the family)."""
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full(p.shape, NAN)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        # Holm (1979) step-down: the k-th smallest p times (m − k + 1), made monotone, capped at 1 — the same
        # numbers as statsmodels multipletests(method="holm") (tested), without its per-call garbage collection.
        q = p[ok]
        order = np.argsort(q, kind="stable")
        m = q.size
        adj = np.minimum(1.0, np.maximum.accumulate(q[order] * (m - np.arange(m))))
        res = np.empty(m)
        res[order] = adj
        out[ok] = res
    return out


# --------------------------------------------------------------------------------------------------------------
# Power of the decision tests


def mde_mcnemar(n: int, discordance: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable difference of paired proportions for McNemar's test (continuity-corrected) with n pairs and
    the observed discordance ψ (the share of items on which the arms disagree): the smallest delta ≤ ψ at which
    `mcnemar_power` reaches ``power`` (bisection to 1e-6; exact enumeration up to n = 400, Connor 1987 above). NaN when
    ψ is 0 (the data cannot tell the design's power) or when even delta = ψ does not reach it."""
    problems: list[Problem] = []
    n = _as_count("n", n, problems)
    if not (isinstance(discordance, numbers.Real) and 0.0 <= discordance <= 1.0):
        problems.append(Problem("must be a proportion in [0, 1]", field="discordance", value=discordance))
    alpha, power = _check_alpha_power(alpha, power, problems)
    _raise(problems)
    psi = float(discordance)
    if n == 0 or psi == 0.0:
        return NAN
    if mcnemar_power(n, psi, psi, alpha) < power:
        return NAN
    lo, hi = 0.0, psi
    for _ in range(20):
        mid = (lo + hi) / 2
        if mcnemar_power(n, psi, mid, alpha) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def _fisher_rejection(n1: int, n2: int, alpha: float) -> np.ndarray:
    """Boolean (n1 + 1) × (n2 + 1) grid: two-sided Fisher exact p < alpha for k1 of n1 vs k2 of n2.

    Vectorised per margin total K = k1 + k2 with scipy.stats.hypergeom, using scipy.stats.fisher_exact's two-sided
    rule (sum of the probabilities of tables no more likely than the observed one, relative tolerance 1e-7);
    tested table by table against scipy.stats.fisher_exact."""
    from scipy.stats import hypergeom

    rej = np.zeros((n1 + 1, n2 + 1), dtype=bool)
    for K in range(n1 + n2 + 1):
        lo, hi = max(0, K - n2), min(n1, K)
        x = np.arange(lo, hi + 1)
        pmf = hypergeom.pmf(x, n1 + n2, n1, K)
        p = (pmf[None, :] * (pmf[None, :] <= pmf[:, None] * (1 + 1e-7))).sum(axis=1)
        rej[x, K - x] = np.minimum(p, 1.0) < alpha
    return rej


_FISHER_REJECTION_CACHE: dict[tuple[int, int, float], np.ndarray] = {}
FISHER_EXACT_POWER_MAX_N = 300


def fisher_power(n1: int, n2: int, p1: float, p2: float, alpha: float = 0.05) -> float:
    """Exact power of the two-sided Fisher exact test at level alpha: Σ P(k1; n1, p1)·P(k2; n2, p2) over the
    (k1, k2) it rejects. Enumerates all (n1 + 1)(n2 + 1) tables (scipy.stats.fisher_exact), so n1, n2 ≤ 300."""
    problems: list[Problem] = []
    n1, n2 = _as_count("n1", n1, problems), _as_count("n2", n2, problems)
    for name, p in (("p1", p1), ("p2", p2)):
        if not (isinstance(p, numbers.Real) and 0.0 <= p <= 1.0):
            problems.append(Problem("must be a proportion in [0, 1]", field=name, value=p))
    alpha = _check_level(alpha, problems, "alpha")
    if not problems and max(n1, n2) > FISHER_EXACT_POWER_MAX_N:
        problems.append(
            Problem(
                f"exact enumeration is limited to {FISHER_EXACT_POWER_MAX_N} per group",
                field="n1/n2",
                value=max(n1, n2),
                fix="use mde_unpaired (normal approximation)",
            )
        )
    _raise(problems)
    from scipy.stats import binom

    key = (n1, n2, float(alpha))
    rej = _FISHER_REJECTION_CACHE.get(key)
    if rej is None:
        rej = _FISHER_REJECTION_CACHE[key] = _fisher_rejection(n1, n2, alpha)
    w1 = binom.pmf(np.arange(n1 + 1), n1, float(p1))
    w2 = binom.pmf(np.arange(n2 + 1), n2, float(p2))
    return float(w1 @ rej.astype(float) @ w2)


def mde_fisher(
    n1: int, n2: int, p_baseline: float, alpha: float = 0.05, power: float = 0.8, direction: int = 1
) -> float:
    """Smallest difference p2 − p_baseline (upward for ``direction`` = +1, downward for −1) at which the exact
    two-sided Fisher test with n1 baseline and n2 treatment items reaches ``power`` (bisection on `fisher_power`).
    NaN when no difference inside [0, 1] reaches it."""
    problems: list[Problem] = []
    alpha, power = _check_alpha_power(alpha, power, problems)
    _raise(problems)
    edge = 1.0 if direction > 0 else 0.0
    if fisher_power(n1, n2, p_baseline, edge, alpha) < power:
        return NAN
    lo, hi = 0.0, abs(edge - p_baseline)
    for _ in range(40):
        mid = (lo + hi) / 2
        if fisher_power(n1, n2, p_baseline, p_baseline + direction * mid, alpha) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def welch_inference(first: Any, second: Any, level: float = 0.95) -> PairedInference:
    """Inference on mean(second) − mean(first) for two independent samples: Welch's t-test and its interval
    (Welch 1947; scipy.stats.ttest_ind(equal_var=False) gives the same t and p), as a `PairedInference` so a
    null other than 0 is tested with the same statistic. For a change of a delta measured on different items."""
    problems: list[Problem] = []
    a = _vector("first", first, problems)
    b = _vector("second", second, problems)
    level = _check_level(level, problems)
    _raise(problems)
    method = "welch-t"
    n = a.size + b.size
    value = float(b.mean() - a.mean()) if a.size and b.size else NAN
    st: dict[str, Any] = {"n1": a.size, "n2": b.size}
    if a.size < 2 or b.size < 2:
        reason = "each group needs at least 2 values"
        return PairedInference(
            _nan_estimate(method, n, level, reason, value=value), _nan_test(method, "two-sided", n, reason), method, st
        )
    va, vb = float(np.var(a, ddof=1)) / a.size, float(np.var(b, ddof=1)) / b.size
    se = math.sqrt(va + vb)
    if not (se > 0):
        reason = "both groups are constant: t is undefined (zero variance)"
        return PairedInference(
            _nan_estimate(method, n, level, reason, value=value), _nan_test(method, "two-sided", n, reason), method, st
        )
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    st.update(se=se, df=df)
    return _t_inference(method, value, se, df, n, level, st, _impl("scipy", "scipy.stats.t (Welch–Satterthwaite df)"))


def _mn_restricted_mle(k1: int, n1: int, k2: int, n2: int, delta: float) -> tuple[float, float]:
    """Maximum-likelihood (p̃1, p̃2) of two independent binomials under the constraint p1 − p2 = ``delta``.

    The unique root in [max(0, δ), min(1, 1 + δ)] of the Farrington–Manning cubic (Farrington & Manning 1990,
    Stat Med 9:1447, §2; Miettinen & Nurminen 1985, Stat Med 4:213, Appendix I), with θ = n2/n1 and the sample
    proportions p̂1 = k1/n1, p̂2 = k2/n2 as coefficients:
    a = 1 + θ, b = −(1 + θ + p̂1 + θ p̂2 + δ(θ + 2)), c = δ² + δ(2p̂1 + θ + 1) + p̂1 + θ p̂2, d = −p̂1 δ(1 + δ),
    solved in trigonometric form: v = b³/(27a³) − bc/(6a²) + d/(2a), u = sign(v)·√(b²/(9a²) − c/(3a)),
    w = (π + arccos(v/u³))/3, p̃1 = 2u cos(w) − b/(3a), p̃2 = p̃1 − δ.

    Hand-written, not statsmodels: statsmodels 0.15's ``score_test_proportions_2indep`` (behind
    ``test_proportions_2indep`` / ``confint_proportions_2indep(method="score")``) puts ``count0 * diff`` where the
    cubic has ``nobs0 * diff``, so its restricted MLE is wrong at every δ ≠ 0 (56/70 vs 48/80 at δ = 0.2 gives
    p̃1 = 0.5762, not the sample proportion 0.6000 it must equal there) and so are its interval bounds. Tested
    against a numerical maximisation of the constrained likelihood (scipy.optimize) on random tables."""
    p1h, p2h = k1 / n1, k2 / n2
    th = n2 / n1
    a = 1.0 + th
    b = -(1.0 + th + p1h + th * p2h + delta * (th + 2.0))
    c = delta * delta + delta * (2.0 * p1h + th + 1.0) + p1h + th * p2h
    d = -p1h * delta * (1.0 + delta)
    v = b**3 / (27.0 * a**3) - b * c / (6.0 * a * a) + d / (2.0 * a)
    u = math.sqrt(max(b * b / (9.0 * a * a) - c / (3.0 * a), 0.0))
    if v < 0:
        u = -u
    if u == 0.0:
        p1 = -b / (3.0 * a)  # triple root
    else:
        w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3.0
        p1 = 2.0 * u * math.cos(w) - b / (3.0 * a)
    p1 = min(max(p1, max(0.0, delta)), min(1.0, 1.0 + delta))  # clip float rounding at the edges only
    return p1, p1 - delta


def _mn_z(k1: int, n1: int, k2: int, n2: int, delta: float) -> float | None:
    """Miettinen–Nurminen score statistic for H0: p1 − p2 = δ,
    z = (p̂1 − p̂2 − δ) / √((p̃1 q̃1/n1 + p̃2 q̃2/n2) · N/(N − 1)), N = n1 + n2, with the restricted MLE of
    `_mn_restricted_mle` (Miettinen & Nurminen 1985, eq. 8; Newcombe 1998, Stat Med 17:873, method 6). None where it
    is 0/0 (the data sit exactly at δ with zero restricted variance: no evidence either way); ±inf where only the
    variance is 0."""
    p1, p2 = _mn_restricted_mle(k1, n1, k2, n2, delta)
    n = n1 + n2
    var = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2) * n / (n - 1.0)
    num = k1 / n1 - k2 / n2 - delta
    if not var > 0.0:
        return None if abs(num) <= 1e-12 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def _mn_score_p(k1: int, n1: int, k2: int, n2: int, null: float, alternative: str) -> float:
    """p of H0: p1 − p2 = ``null`` by the Miettinen–Nurminen score statistic `_mn_z` and the normal tail
    ("greater": H1 p1 − p2 > null). NaN outside −1 < null < 1 or with an empty group; 1 (two-sided) / 0.5
    (one-sided) where the statistic is 0/0."""
    from scipy.stats import norm

    if not -1.0 < null < 1.0 or n1 == 0 or n2 == 0:
        return NAN
    z = _mn_z(k1, n1, k2, n2, float(null))
    if z is None:
        return 1.0 if alternative == "two-sided" else 0.5
    if alternative == "greater":
        return float(norm.sf(z))
    if alternative == "less":
        return float(norm.cdf(z))
    return float(min(1.0, 2.0 * norm.sf(abs(z))))


def _invert_mn(k1: int, n1: int, k2: int, n2: int, level: float, est: float) -> tuple[float, float]:
    """Bounds of the Miettinen–Nurminen score interval {δ : |z(δ)| ≤ z_{(1+level)/2}}: the roots of z(δ) = ±q on
    either side of the estimate (scipy brentq; z decreases in δ). A bound is ±1 when the test never rejects on that
    side (10/10 vs 0/10 has upper bound 1). So the interval excludes δ exactly when the two-sided p at δ is below
    1 − level: the two always agree."""
    from scipy.optimize import brentq

    q = _z_two_sided(level)
    eps = 1e-12

    def z(dl: float) -> float:
        v = _mn_z(k1, n1, k2, n2, dl)
        return 0.0 if v is None else v

    lo_edge, hi_edge = -1.0 + eps, 1.0 - eps
    e_lo, e_hi = min(max(est, lo_edge), hi_edge), max(min(est, hi_edge), lo_edge)
    if z(lo_edge) <= q:
        low = -1.0
    elif z(e_lo) >= q:
        low = e_lo
    else:
        low = float(brentq(lambda dl: z(dl) - q, lo_edge, e_lo, xtol=1e-13, rtol=1e-13))
    if z(hi_edge) >= -q:
        high = 1.0
    elif z(e_hi) <= -q:
        high = e_hi
    else:
        high = float(brentq(lambda dl: z(dl) + q, e_hi, hi_edge, xtol=1e-13, rtol=1e-13))
    return low, high


def unpaired_score_inference(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> PairedInference:
    """Inference on p1 − p2 for two independent proportions (group 1 = treatment): the Miettinen–Nurminen score
    test and the score interval that inverts it (Miettinen & Nurminen 1985, Stat Med 4:213; Newcombe 1998, Stat
    Med 17:873, method 6). Hand-written (`_mn_restricted_mle` says why statsmodels' is not used); reproduces all
    eight method-6 examples of Newcombe's Table II to 4 decimals, and statsmodels' test at δ = 0 (where its
    restricted MLE, the pooled proportion, is right). ``p_value(null)`` tests any other null with the same
    statistic. The conditional Fisher exact test is conservative and inverts no interval for the difference; it
    is shown beside."""
    problems: list[Problem] = []
    k1, n1, k2, n2 = _two_groups(k1, n1, k2, n2, problems)
    level = _check_level(level, problems)
    _raise(problems)
    method = "mn-score"
    n = n1 + n2
    st = {"k1": k1, "n1": n1, "k2": k2, "n2": n2}
    if n1 == 0 or n2 == 0:
        reason = _empty_group_reason(n1, n2) or "an empty group"
        return PairedInference(
            _nan_estimate(method, n, level, reason), _nan_test(method, "two-sided", n, reason), method, st
        )
    value = k1 / n1 - k2 / n2
    low, high = _invert_mn(k1, n1, k2, n2, level, value)
    iv = Interval(float(low), float(high), level, "miettinen-nurminen-score")
    z0 = _mn_z(k1, n1, k2, n2, 0.0)
    p = _mn_score_p(k1, n1, k2, n2, 0.0, "two-sided")  # 1 when every item passes or every item fails (0/0)
    impl = (
        "hand-written Miettinen–Nurminen score (Farrington–Manning restricted MLE, N/(N−1) variance factor) + "
        "scipy.stats.norm, scipy.optimize.brentq"
    )
    test = TestResult(NAN if z0 is None else float(z0), p, method, "two-sided", n, None, {"impl": impl})
    return PairedInference(Estimate(value, iv, NAN, n, method), test, method, st)


MCNEMAR_EXACT_POWER_MAX_N = 400


def mcnemar_power(n: int, discordance: float, delta: float, alpha: float = 0.05) -> float:
    """Power of the two-sided McNemar test with Edwards' continuity correction (the decision test, `score_inference`)
    with n pairs, discordance
    probability ψ and a true difference delta (treatment-only minus baseline-only probability).

    Exact for n ≤ 400: the sum of multinomial probabilities of (b, c, n − b − c), with cell probabilities
    (ψ + delta)/2 and (ψ − delta)/2, over the tables the test rejects ((|b − c| − 1)/√(b + c) > z_{1−α/2}); above that,
    Connor's (1987) normal approximation. ψ below |delta| is impossible and is raised to |delta|. Hand-written:
    statsmodels' power classes have no paired-proportion case."""
    problems: list[Problem] = []
    n = _as_count("n", n, problems)
    for name, v in (("discordance", discordance), ("delta", delta)):
        if not (isinstance(v, numbers.Real) and math.isfinite(v) and -1.0 <= v <= 1.0):
            problems.append(Problem("must be a number in [-1, 1]", field=name, value=v))
    alpha = _check_level(alpha, problems, "alpha")
    _raise(problems)
    from scipy.special import gammaln
    from scipy.stats import norm

    d = abs(float(delta))
    psi = min(1.0, max(float(discordance), d))
    if n == 0 or psi == 0.0:
        return NAN if n == 0 else 0.0
    z = float(norm.ppf(1 - alpha / 2))
    if n > MCNEMAR_EXACT_POWER_MAX_N:
        if d >= psi:
            return 1.0
        return float(norm.cdf((d * math.sqrt(n) - 1 / math.sqrt(n) - z * math.sqrt(psi)) / math.sqrt(psi - d * d)))
    pb, pc, pr = (psi + d) / 2, (psi - d) / 2, 1.0 - psi
    b = np.arange(n + 1)[:, None]
    c = np.arange(n + 1)[None, :]
    r = n - b - c
    ok = r >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        m = b + c
        stat = np.where(m > 0, np.maximum(np.abs(b - c) - MCNEMAR_CORRECTION, 0) / np.sqrt(np.maximum(m, 1)), 0.0)
        logp = (
            gammaln(n + 1)
            - gammaln(b + 1)
            - gammaln(c + 1)
            - gammaln(np.maximum(r, 0) + 1)
            + np.where(b > 0, b * np.log(pb) if pb > 0 else -np.inf, 0.0)
            + np.where(c > 0, c * np.log(pc) if pc > 0 else -np.inf, 0.0)
            + np.where(r > 0, np.maximum(r, 0) * (np.log(pr) if pr > 0 else -np.inf), 0.0)
        )
    mask = ok & (stat > z)
    return float(np.exp(logp[mask]).sum()) if mask.any() else 0.0


ANYTIME_METHOD = "betting-cs"


def anytime_inference(
    differences: Any, level: float = 0.95, bounds: tuple[float, float] = (-1.0, 1.0)
) -> PairedInference:
    """`PairedInference` valid at any stopping time, for the mean of bounded paired differences observed in the order
    given (a live audit's seeded generation order): the betting confidence sequence of Waudby-Smith & Ramdas (2024,
    JRSS-B 86:1, Theorem 3; `audit.sequential`) at ``level``, running intersection included, and anytime p-values from
    its two one-sided halves (e-processes with bets tuned to α/2; p = 1/sup_t K_t by Ville's inequality), so the
    interval excludes a null exactly when the one-sided p there is below α/2, whenever the data are looked at.
    ``bounds``: the range of one difference ([−1, 1] for 0/1 scores). The two-sided p is min(1, 2·min(one-sided)).

    The order matters (the capital is a path): the differences must be in the order the items were drawn, and that
    order must not depend on the outcomes. Items are taken as independent draws from the benchmark's population of
    items, as every fixed-n test of the audit takes them; clustered items are refused by the caller."""
    problems: list[Problem] = []
    d = _vector("differences", differences, problems)
    level = _check_level(level, problems)
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        problems.append(Problem("need two finite numbers, the lower first", field="bounds", value=list(bounds)))
    _raise(problems)
    from audit.sequential import confidence_interval

    n = int(d.size)
    alpha = 1.0 - level
    value = float(d.mean()) if n else NAN
    sd = float(np.std(d, ddof=1)) if n >= 2 else NAN
    st: dict[str, Any] = {
        "lo": lo,
        "hi": hi,
        "alpha": alpha,
        "n": n,
        "sd_diff": sd,
        "se": sd / math.sqrt(n) if n else NAN,
    }
    path = np.clip(d, lo, hi)
    iv = confidence_interval(path, alpha, lo, hi)
    interval = Interval(iv.low, iv.high, level, ANYTIME_METHOD, iv.reason)
    est = Estimate(value, interval, st["se"], n, ANYTIME_METHOD, reason=iv.reason)
    p0 = _anytime_p(path, st, 0.0, "two-sided")
    test = TestResult(NAN, p0, ANYTIME_METHOD, "two-sided", n, None if math.isfinite(p0) else "no items")
    return PairedInference(est, test, ANYTIME_METHOD, st, path)


def _anytime_p(d: Any, s: dict, null: float, alternative: str) -> float:
    """The anytime-valid p of `anytime_inference` at ``null`` on its path ``d`` (draw order) and stats ``s``: one-sided
    from the matching half of the hedged capital (bets tuned to α/2, the level its interval's ends are dual to),
    two-sided twice the smaller."""
    from audit.sequential import e_value

    lo, hi, alpha = float(s["lo"]), float(s["hi"]), float(s["alpha"])
    if d is None or not len(d):
        return NAN

    def one(side: str) -> float:
        if null <= lo:
            return 1.0 if side == "less" else 0.0
        if null >= hi:
            return 0.0 if side == "less" else 1.0
        return float(e_value(d, null, lo, hi, side, alpha=alpha / 2.0).p_value)

    if alternative == "greater":
        return one("greater")
    if alternative == "less":
        return one("less")
    return min(1.0, 2.0 * min(one("greater"), one("less")))
