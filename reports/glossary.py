"""What a finding's statistic keys mean, for the findings cards of report.html.

A check's ``statistic`` is a dict of its own keys (``clt_se``, ``p_below_reported``, ``b``, ``c``, ...), documented in
the check. The page shows each as a labelled row — name, value, meaning — instead of the raw key: :data:`GLOSSARY`
holds the keys that recur across checks; a key it does not know is shown as it is, with no meaning (never guessed).
A ``<x>_ci_low`` / ``<x>_ci_high`` pair is one row, the interval of ``<x>``. report.json keeps the raw keys; the
row's ``key`` (shown as the name's tooltip on the page) ties the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# key → (name, meaning). Meanings say what the number is and, where it matters, whether a verdict rests on it.
GLOSSARY: dict[str, tuple[str, str]] = {
    # the cell and its decision test
    "n": ("items", "paired items the numbers rest on"),
    "delta": ("delta", "treatment − baseline: mean over the paired items, in the claimed direction's metric"),
    "p_value": ("p-value", "of the decision test (two-sided)"),
    "test": ("test", "the decision test"),
    "ci_method": ("interval method", "how the interval was computed (it inverts the decision test)"),
    "level": ("confidence level", "of every interval in this finding"),
    "b": ("treatment-only passes (b)", "items the treatment passes and the baseline fails: McNemar's b"),
    "c": ("baseline-only passes (c)", "items the baseline passes and the treatment fails: McNemar's c"),
    "discordance": ("discordant share", "(b + c) / n: the share of items on which the arms disagree"),
    "exact_p": (
        "exact McNemar p",
        "two-sided exact binomial test on the discordant pairs; shown beside, decides nothing",
    ),
    "mid_p": ("McNemar mid-p", "the exact p less half the probability of the observed split; shown beside"),
    "correlation": ("within-item correlation", "of the arms' scores across items: the higher, the more pairing helps"),
    "clt_se": (
        "CLT standard error",
        "paired SE of the delta, √(Σ(dᵢ − d̄)² / (n(n − 1))) (Miller 2024); shown beside, decides nothing",
    ),
    "boot_ci": (
        "bootstrap interval",
        "paired bootstrap percentile interval of the delta; shown beside, decides nothing",
    ),
    "newcombe_ci": ("Newcombe interval", "hybrid score interval of the difference of the two rates; shown beside"),
    "fisher_p": ("Fisher exact p", "two-sided, from the counts; shown beside"),
    "n_baseline": ("items, baseline", "the baseline arm's items"),
    "n_treatment": ("items, treatment", "the treatment arm's items"),
    # the reported numbers
    "reported_delta": ("reported delta", "the delta the claim reports"),
    "reported_null": ("reported delta less its tolerance", "the null value of the 'smaller than reported' test"),
    "reported_tolerance": (
        "tolerance of the reported delta",
        "half a unit of its last digit as written in the claim file, plus options.margin when set",
    ),
    "p_below_reported": (
        "p, smaller than reported",
        "one-sided p of H0 'the true delta is at least the reported one "
        "less its tolerance': below α/2, the claim is not reproduced",
    ),
    "reported": ("reported", "the value the claim reports"),
    "measured": ("measured", "the value in the logs"),
    "reported_p": ("reported p-value", "the p-value the claim reports"),
    "reported_test": ("reported test", "the test the claim names"),
    "k": ("passes implied", "reported rate × n: a whole number when the rate is possible"),
    "tolerance": ("rounding tolerance", "how far the reported number may be from the recomputed one"),
    "treatment_minus_baseline": ("treatment − baseline", "recomputed from the reported rates"),
    "unanswered": ("unanswered items", "outputs with no extractable answer"),
    # power
    "mde": ("minimum detectable effect", "the smallest delta this design shows as significant with the stated power"),
    "power_at_reported": (
        "power at the reported delta",
        "the chance this design shows the reported delta as significant",
    ),
    "power_method": ("power method", "how the power was computed"),
    "margin": (
        "margin",
        "what 'material' means, in metric units (options.margin, else half the larger of the "
        "reported and measured gain)",
    ),
    # perturbations
    "perturbation": ("perturbation", "what was changed: budget, scoring or OOD prompt variant"),
    "label": ("perturbed setting", "the setting compared with the claimed one"),
    "claimed_budget": ("claimed budget", "generation budget of the claim, in tokens"),
    "claimed_delta": ("delta at the claimed setting", "treatment − baseline where the claim was made"),
    "delta_claimed": ("delta at the claimed setting", "treatment − baseline where the claim was made"),
    "default_delta": ("delta in distribution", "treatment − baseline on the claim's own prompts"),
    "change": ("change of the gain", "perturbed − claimed delta, per item on the shared items"),
    "change_ci": ("interval of the change", "the interval of the change of the gain"),
    "change_method": ("test of the change", "paired t of the difference of differences (Welch on other items)"),
    "break_test": ("break tested", "which harm the break test looks for (a harmful change, a reversal)"),
    "p_break": ("p, break", "one-sided p of H0 'the change of the gain ≥ 0'"),
    "p_break_holm": ("p, break (Holm)", "p_break adjusted by Holm over every perturbation of the audit"),
    "family_size": ("Holm family", "perturbations tested together"),
    "breaks": ("breaks the gain", "yes when Holm p < α/2 and the change is beyond −margin"),
    "above_claim": ("stays at or above the claim", "the perturbed gain is shown to stay at or above the reported one"),
    "shared_items": ("shared items", "items both settings hold; the change is computed on them"),
    "missing_items": ("items one setting lacks", "left out of the comparison"),
    "polarity": ("polarity", "+1: higher scores are better under this scoring; −1: lower"),
    # subject
    "variant": ("prompt variant", "default: the claim's own prompts"),
    "budget": ("budget", "generation budget, in tokens"),
    "budgets": ("budgets", "generation budgets, in tokens"),
    "scoring": ("scoring", "how outputs were scored"),
    "arm": ("arm", "baseline or treatment"),
    "setting": ("setting", "an effective setting of the arms"),
    "group": ("kind of setting", "sampling, budget, template, harness, ..."),
    # truncation and answers
    "rate_baseline": ("cut-off rate, baseline", "share of the baseline's outputs that hit the budget"),
    "rate_treatment": ("cut-off rate, treatment", "share of the treatment's outputs that hit the budget"),
    "delta_all": ("delta, all items", "treatment − baseline on every paired item"),
    "delta_untruncated": ("delta, untruncated items", "treatment − baseline on the items neither arm truncated"),
    "n_untruncated": ("untruncated items", "items neither arm truncated"),
    "clean_ci": ("interval, untruncated items", "of the delta on the items neither arm truncated"),
    "p_clean_below_margin": (
        "p, gain gone on untruncated items",
        "one-sided p of H0 'the gain on the untruncated items ≥ margin'",
    ),
    "no_answer_baseline": ("no-answer rate, baseline", "share of the baseline's outputs with no extractable answer"),
    "no_answer_treatment": ("no-answer rate, treatment", "share of the treatment's outputs with no extractable answer"),
    "delta_both_answered": ("delta, both answered", "treatment − baseline on the items both arms answered"),
    "n_both_answered": ("items both answered", "items where both arms gave an extractable answer"),
    "p_both_below_margin": (
        "p, gain gone where both answered",
        "one-sided p of H0 'the gain on the items both answered ≥ margin'",
    ),
    # item sets
    "shared": ("shared items", "items both arms hold"),
    "n_only_baseline": ("items only the baseline has", "left out of every paired test"),
    "n_only_treatment": ("items only the treatment has", "left out of every paired test"),
    "published_baseline": ("published baseline", "the baseline on all its own items (unpaired)"),
    "published_treatment": ("published treatment", "the treatment on all its own items (unpaired)"),
    "published_delta": ("published delta", "treatment − baseline, each on its own items (unpaired)"),
    "shared_delta": ("delta, shared items", "treatment − baseline on the items both arms hold (paired)"),
    "shared_ci": ("interval, shared items", "of the paired delta on the shared items"),
    "shared_test": ("test, shared items", "the paired decision test on the shared items"),
    # probes
    "claimed_auc": ("claimed AUC", "the probe AUC the claim reports"),
    "auc_ood": ("OOD AUC", "probe AUC on the out-of-distribution set"),
    "auc_ood_shared": ("OOD AUC, shared items", "on the items both sets hold"),
    "ood_ci": ("interval of the OOD AUC", "DeLong, on the logit scale"),
    "ood_mw_p": ("p, OOD AUC vs chance", "Mann–Whitney test of AUC = 0.5"),
    "diff": ("AUC difference", "in distribution − OOD"),
    "diff_ci": ("interval of the AUC difference", "paired DeLong"),
    "diff_se": ("SE of the AUC difference", "paired DeLong"),
    "se": ("standard error", "of the estimate"),
    "z": ("z", "the test statistic"),
    "n_pos": ("positives", "items labelled 1"),
    "n_neg": ("negatives", "items labelled 0"),
    "n_shared": ("shared items", "items in both probe sets"),
    "set": ("OOD set", "the probe file's name in the claim"),
    # lengths
    "ratio_chars": ("length ratio", "treatment / baseline mean output length in characters"),
    "difference_chars": ("length difference", "treatment − baseline, mean characters per output"),
    # mimicry
    "marker_delta": ("marker rate change", "treatment − baseline share of outputs with a disposition marker"),
    "marker_ci": ("interval of the marker change", "paired, McNemar-inverting"),
    "marker_p": ("p, marker change", "McNemar with continuity correction"),
    "marker_test": ("test, markers", "the paired test of the marker rates"),
    "correctness_delta": ("correctness change", "treatment − baseline accuracy on the same items"),
    "correctness_ci": ("interval of the correctness change", "paired"),
    "correctness_p": ("p, correctness change", "the paired decision test"),
    # emergence
    "observed_em_delta": ("exact-match delta, observed", "treatment − baseline under exact match"),
    "observed_ci": ("interval, observed", "of the observed exact-match delta"),
    "predicted_em_delta": ("exact-match delta, predicted", "from per-token accuracy p as p^L (Schaeffer et al. 2023)"),
    "token_accuracy_delta": ("per-token accuracy delta", "treatment − baseline share of answer tokens right"),
    "token_accuracy_ci": ("interval, per-token accuracy", "of the per-token accuracy delta"),
}


# interval method (a cell's ``ci_method``) → (name, meaning), for a method a reader meets only in some reports.
METHODS: dict[str, tuple[str, str]] = {
    "betting-cs": (
        "anytime-valid betting confidence sequence",
        "the betting confidence sequence of Waudby-Smith & Ramdas (2024) for the mean of the bounded per-item "
        "differences, taken in the seeded draw order, with its one-sided e-processes for the p-values: valid at any "
        "stopping time, however often the audit looked, so a sequential audit may stop as soon as it excludes a "
        "value; the price is width — it is wider than a fixed-n interval on the same items, which is valid only "
        "when the number of items was fixed in advance",
    ),
}


def method_meaning(method: Any) -> str | None:
    """What an interval method of :data:`METHODS` is (its name and meaning), or None for another method."""
    known = METHODS.get(method) if isinstance(method, str) else None
    return f"{known[0]}: {known[1]}" if known else None


@dataclass(frozen=True)
class StatRow:
    key: str  # the raw key in report.json (for a pair, "<x>_ci")
    name: str
    value: str
    meaning: str


def statistic_rows(
    statistic: dict[str, Any],
    fmt: Callable[[Any, str], str],
    fmt_ci: Callable[[Any, Any, str], str],
    skip: tuple[str, ...] = (),
) -> list[StatRow]:
    """The rows a findings card shows for ``statistic``, in its order: known keys named and explained, unknown keys
    as they are, each ``<x>_ci_low`` / ``<x>_ci_high`` pair as one interval row. ``skip``: keys shown elsewhere."""
    rows: list[StatRow] = []
    for key, value in statistic.items():
        if key in skip or (key.endswith("_ci_high") and key[: -len("high")] + "low" in statistic):
            continue
        if key.endswith("_ci_low") and key[: -len("low")] + "high" in statistic:
            pair = key[: -len("_low")]  # "<x>_ci"
            name, meaning = GLOSSARY.get(pair, (pair, ""))
            rows.append(StatRow(pair, name, fmt_ci(value, statistic[pair + "_high"], pair), meaning))
            continue
        name, meaning = GLOSSARY.get(key, (key, ""))
        rows.append(StatRow(key, name, fmt(value, key), meaning))
    return rows


__all__ = ["GLOSSARY", "METHODS", "StatRow", "method_meaning", "statistic_rows"]
