"""mimicry: do surface markers of a disposition rise while correctness does not?

A treatment trained or prompted to "verify its work" or to "express uncertainty" can learn the words without the
behaviour. Per arm at the claimed budget and scoring the check counts the outputs that contain a marker (regular
expressions, case-insensitive, on word boundaries; defaults: self-verification phrases — "let me verify",
"double-check", "let me check", "verify" — and hedges — "I think", "probably", "might", "not sure"; configurable), with
a Wilson interval per arm, and compares the paired marker-rate delta (McNemar test (continuity-corrected) on 0/1
marker presence with the Tango interval that inverts it) with the correctness delta at the same setting (the claimed
cell).

Evidence rule: a major flag rests on a test that excludes the null it refutes, on a stated minimum of informative
items; otherwise the same numbers are reported as an inconclusive (minor) finding that says why they are not evidence.

* ``markers_without_correctness`` (major, no verdict impact) refutes "the treatment uses the markers at most
  ``min_marker_rise`` (default 5 points) more often than the baseline": the whole Tango interval of the paired rise
  lies above that margin (a one-sided test at (1 − level)/2; its false-alarm rate at a true rise of exactly the
  margin is checked by simulation in the tests), the McNemar test rejects equal rates at α, on at least
  ``min_marker_outputs`` marker-bearing treatment outputs (default 20), while the correctness delta is not a
  significant gain. A rise that is significant but not material (0.1% → 0.3% of 12,000 outputs) is said, minor. Why
  20 outputs: a "disposition" read off six outputs is a handful of phrasings, not a rate. It moves no verdict.
* Markers the declared prompt change introduces are not mimicry: with a prompt change in ``treatment_changes``, a
  phrase found in the treatment's prompt (live templates, lm-eval ``doc_to_text``, or ``prompt_phrases``) and not in
  the baseline's is not counted (``prompt_markers``, info).

Confidence–correctness decoupling: only explicit statements of confidence count — numeric ones ("confidence: 80%",
"confidence 0.8", "I'm 90% sure", "90% confident"), "confidence: high/medium/low", and first-person verbal ones
(``audit.check_params.CONFIDENCE_LEXICON``: "I'm certain" 0.9, "I'm confident" 0.85, "I'm fairly sure" 0.7, "I'm not
sure"/"I'm uncertain" 0.3; listed by ``audit checks``, replaceable by ``confidence_lexicon``). Chain-of-thought words
("likely", "probably", "a certain percentage", "definitely") state no confidence. The last statement in an output
counts. Per arm: the AUC of stated confidence for correctness (DeLong CI, ``stats.auc_delong``; one-sided
Mann–Whitney test against 0.5), and the assertion asymmetry: the share of confident-and-wrong (confidence ≥
``confident_at``) vs hedged-and-right (confidence ≤ ``hedged_at``) outputs among those stating one.

* ``confidence_decoupled`` (major, no verdict impact) needs a treatment effect, not a level: the treatment's AUC
  interval lies wholly below ``tracking_auc`` (default 0.6; H0 AUC ≥ 0.6 rejected one-sided at α/2), *and* either the
  baseline states confidence as well and the treatment's AUC is below the baseline's by more than ``auc_margin``
  (default 0.1; the whole interval of the difference, unpaired DeLong z — conservative for arms on the same items), or
  the baseline does not state confidence and the treatment's rate of stating one rises beyond ``min_marker_rise``
  (whole interval). A baseline whose confidence is as uninformative gives ``confidence_like_baseline`` (info).
* ``confidence_tracks`` (pass): the one-sided Mann–Whitney test rejects AUC = 0.5.
* Neither: ``confidence_unresolved`` (inconclusive, minor) with the numbers.
* All three need at least ``min_confidence_outputs`` treatment outputs that state a confidence (default 30) with at
  least ``min_confidence_per_class`` right and as many wrong among them (default 10). Below that the AUC is still
  shown (``confidence_too_few``: inconclusive, minor), with the counts.

Outputs with no marker and no stated confidence in either arm give no findings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import repeat

import numpy as np
from audit.checks._common import CheckSpec, Context, MeasuredCell, excludes_zero, fmt_ci, fmt_delta, item_evidence

from audit import stats
from audit.check_params import CONFIDENCE_LEXICON, DEFAULT_MARKERS, MimicryParams  # noqa: F401 - re-exported
from audit.findings import Finding, Impact, Outcome, Severity

NAME = "mimicry"


# Explicit statements of confidence (audit.check_params.CONFIDENCE_LEXICON, shown by `audit checks`); the claim may
# replace them (checks.mimicry.confidence_lexicon). Negated forms come first in the lexicon and win over the positive
# words they contain.
VERBAL_CONFIDENCE: list[tuple[str, float]] = list(CONFIDENCE_LEXICON.items())
LEVEL_CONFIDENCE = {"very high": 0.95, "high": 0.9, "medium": 0.6, "moderate": 0.6, "low": 0.3, "very low": 0.1}
# Declared treatment changes that change the prompt (checks.settings' names).
PROMPT_CHANGES = (
    "prompt",
    "prompt_template",
    "template",
    "doc_to_text",
    "system_prompt",
    "system_instruction",
    "system",
    "task",
)
# Settings keys that hold an arm's prompt text (lm-eval results config, live runs).
_PROMPT_KEYS = ("doc_to_text", "prompt_template", "prompt", "system_prompt", "system_instruction", "description")

_NUM = r"(\d{1,3}(?:\.\d+)?)"
_NUMERIC = [
    (re.compile(r"\bconfidence(?:\s+(?:level|score))?\s*(?:is|of|[:=])?\s*" + _NUM + r"\s*%", re.I), 100.0),
    (re.compile(r"\b" + _NUM + r"\s*%\s*(?:sure|confident|certain|certainty|confidence)\b", re.I), 100.0),
    (
        re.compile(r"\bconfidence(?:\s+(?:level|score))?\s*(?:is|of|[:=])?\s*(0?\.\d+|[01](?:\.0+)?)\b(?!\s*%)", re.I),
        1.0,
    ),
]
_LEVEL = re.compile(r"\bconfidence(?:\s+level)?\s*(?:is|[:=])?\s*(very high|very low|high|medium|moderate|low)\b", re.I)


def verbal_patterns(lexicon: dict[str, float] | list[tuple[str, float]]) -> list[tuple[re.Pattern, float]]:
    items = lexicon.items() if isinstance(lexicon, dict) else lexicon
    return [(re.compile(r"(?<!\w)(?:" + pat + r")(?!\w)", re.I), float(v)) for pat, v in items]


_VERBAL = verbal_patterns(VERBAL_CONFIDENCE)
# Every default pattern above needs one of these words: a text without any states no confidence (a fast exact
# pre-filter; a claim's own lexicon is searched without it).
_MAYBE_CONFIDENCE = re.compile(r"sure|certain|confiden", re.I)


Params = MimicryParams


def marker_regex(phrase: str) -> re.Pattern:
    """Case-insensitive, word-boundary pattern for a phrase; inner spaces match any run of whitespace."""
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.compile(r"(?<!\w)" + body + r"(?!\w)", re.I)


_ANY = object()  # key of the pre-filter in marker_patterns' result


def marker_patterns(markers: dict[str, list[str]]) -> dict:
    """category → [(phrase, pattern)], plus a pre-filter matching wherever any phrase matches (an alternation of
    the same patterns), so that texts without a marker cost one search."""
    out: dict = {cat: [(ph, marker_regex(ph)) for ph in phrases if ph.strip()] for cat, phrases in markers.items()}
    every = [rx.pattern for pats in out.values() for _, rx in pats]
    if every:
        out[_ANY] = re.compile("|".join(f"(?:{p})" for p in every), re.I)
    return out


def find_markers(text: str | None, patterns: dict) -> dict[str, list[str]]:
    """category → the phrases found in ``text``; ``patterns``: :func:`marker_patterns` (category → [(phrase,
    pattern)], and the pre-filter)."""
    out: dict[str, list[str]] = {}
    if not isinstance(text, str):
        return out
    anything = patterns.get(_ANY)
    if anything is not None and not anything.search(text):
        return out
    for cat, pats in patterns.items():
        if cat is _ANY:
            continue
        hits = [ph for ph, rx in pats if rx.search(text)]
        if hits:
            out[cat] = hits
    return out


def marker_presence(texts, patterns: dict) -> dict[str, np.ndarray]:
    """For each category of ``patterns`` (:func:`marker_patterns`) and for ``"any"``: whether each text holds a marker
    of it — exactly ``cat in find_markers(text)`` and ``bool(find_markers(text))``, found with one search per text and
    one per category for the texts that hold any marker (an alternation of the category's phrases matches where one of
    them does), instead of a search per phrase. Which phrases a text holds: :func:`find_markers`."""
    n = len(texts)
    cats = [c for c in patterns if c is not _ANY]
    out = {cat: np.zeros(n, dtype=bool) for cat in cats}
    out["any"] = np.zeros(n, dtype=bool)
    anything = patterns.get(_ANY)
    if anything is None:
        return out
    hit = _matching(texts, anything)
    out["any"][hit] = True
    for cat in cats:
        pats = patterns[cat]
        if not pats or not hit:
            continue
        either = re.compile("|".join(f"(?:{rx.pattern})" for _, rx in pats), re.I).search
        out[cat][[i for i in hit if either(texts[i])]] = True
    return out


def _matching(texts, rx: re.Pattern) -> list[int]:
    """Positions of the texts ``rx`` finds something in (texts that are not strings: none), searched in a C-level
    map when every one is a string."""
    if all(map(isinstance, texts, repeat(str))):
        return [i for i, m in enumerate(map(rx.search, texts)) if m is not None]
    return [i for i, t in enumerate(texts) if isinstance(t, str) and rx.search(t)]


def stated_confidences(texts, verbal: list[tuple[re.Pattern, float]] | None = None) -> np.ndarray:
    """:func:`stated_confidence` of each text; with the built-in lexicon only the texts its pre-filter passes are
    read (the others state none)."""
    out = np.full(len(texts), math.nan)
    for i in range(len(texts)) if verbal is not None else _matching(texts, _MAYBE_CONFIDENCE):
        out[i] = stated_confidence(texts[i], verbal)
    return out


def stated_confidence(text: str | None, verbal: list[tuple[re.Pattern, float]] | None = None) -> float:
    """The confidence an output states, in [0, 1] (last statement; numeric before verbal); NaN when none.
    ``verbal``: the explicit verbal statements (default: the built-in lexicon)."""
    if not isinstance(text, str) or (verbal is None and not _MAYBE_CONFIDENCE.search(text)):
        return math.nan
    best: tuple[int, float] | None = None
    for rx, scale in _NUMERIC:
        for m in rx.finditer(text):
            v = float(m.group(1)) / scale
            if 0.0 <= v <= 1.0 and (best is None or m.start() >= best[0]):
                best = (m.start(), v)
    for m in _LEVEL.finditer(text):
        v = LEVEL_CONFIDENCE[m.group(1).lower()]
        if best is None or m.start() >= best[0]:
            best = (m.start(), v)
    if best is not None:
        return best[1]
    last: tuple[int, float] | None = None
    taken: list[tuple[int, int]] = []
    for rx, v in _VERBAL if verbal is None else verbal:
        for m in rx.finditer(text):
            if any(s <= m.start() < e for s, e in taken):
                continue  # "not sure" already counted; do not count its "sure" again
            taken.append((m.start(), m.end()))
            if last is None or m.start() >= last[0]:
                last = (m.start(), v)
    return last[1] if last is not None else math.nan


def run(ctx: Context, params: Params) -> list[Finding]:
    rec = ctx.records
    cb = ctx.claimed_budget
    claimed = ctx.cell(cb) if rec is not None and cb is not None else None
    if rec is None or cb is None or claimed is None:
        return []
    p = rec.paired(claimed.scoring, cb)  # the claimed cell's scoring is ctx.claimed_scoring
    introduced = prompt_introduced(ctx, params)
    markers = {cat: [ph for ph in phrases if ph.lower() not in introduced] for cat, phrases in params.markers.items()}
    patterns = marker_patterns(markers)
    texts = {
        "baseline": p.frame["text_b"].to_numpy(dtype=object),
        "treatment": p.frame["text_t"].to_numpy(dtype=object),
    }
    found = {arm: marker_presence(tx, patterns) for arm, tx in texts.items()}
    verbal = None if params.confidence_lexicon == CONFIDENCE_LEXICON else verbal_patterns(params.confidence_lexicon)
    conf = {arm: stated_confidences(tx, verbal) for arm, tx in texts.items()}
    any_marker = any(found[arm]["any"].any() for arm in found)
    any_conf = any(np.isfinite(c).any() for c in conf.values())
    if not any_marker and not any_conf and not introduced:
        return []
    prov = ctx.provenance(
        markers=params.markers,
        marker_rate="Wilson score interval",
        min_marker_outputs=params.min_marker_outputs,
        marker_delta="McNemar test (continuity-corrected) on 0/1 marker presence with the Tango "
        "interval that inverts it",
        budget=cb,
        scoring=ctx.claimed_scoring,
    )
    findings: list[Finding] = []
    if introduced:
        findings.append(
            Finding(
                NAME,
                "prompt_markers",
                Outcome.info,
                "Markers the declared prompt change introduces are not counted: " + ", ".join(sorted(introduced)),
                detail="The treatment's prompt itself contains these phrases and the claim declares the prompt change "
                f"({', '.join(ctx.claim.claim.treatment_changes)}): outputs that echo or continue the prompt are "
                "the change, not a disposition the treatment acquired.",
                statistic={"phrases": sorted(introduced)},
                provenance=prov,
            )
        )
    if any_marker:
        findings.extend(_markers(ctx, params, p, claimed, found, patterns, texts["treatment"], prov))
    if any_conf:
        findings.extend(_confidence(ctx, params, p, conf, prov))
    return findings


def prompt_texts(ctx: Context) -> dict[str, list[str]]:
    """Per arm, the prompt texts the audit knows: live templates (task.prompt, the arm's prompt and system prompt)
    and prompt settings recorded with the logs (lm-eval's doc_to_text and description)."""
    out: dict[str, list[str]] = {"baseline": [], "treatment": []}
    claim = ctx.claim
    for arm in out:
        if claim.live:
            a = getattr(claim.arms, arm, None)
            for t in (
                getattr(a, "prompt", None),
                getattr(a, "system_prompt", None),
                None if getattr(a, "prompt", None) else getattr(claim.task, "prompt", None),
            ):
                if isinstance(t, str):
                    out[arm].append(t)
        st = (ctx.records.settings or {}).get(arm, {}) if ctx.records is not None else {}
        for per_budget in st.values() if isinstance(st, dict) else ():
            if isinstance(per_budget, dict):
                out[arm] += [v for k, v in per_budget.items() if k in _PROMPT_KEYS and isinstance(v, str)]
    return out


def prompt_introduced(ctx: Context, params: Params) -> set[str]:
    """Marker phrases (lower case) that the declared prompt change introduces: found in the treatment's prompt and not
    in the baseline's, or listed in ``prompt_phrases``. Empty unless the claim declares a prompt change."""
    declared = {c.lower() for c in ctx.claim.claim.treatment_changes}
    if not declared & set(PROMPT_CHANGES):
        return set()
    texts = prompt_texts(ctx)
    listed = [ph.lower() for ph in params.prompt_phrases]
    out = set()
    for phrases in params.markers.values():
        for ph in phrases:
            rx = marker_regex(ph)
            in_t = any(rx.search(t) for t in texts["treatment"]) or any(rx.search(x) for x in listed)
            if in_t and not any(rx.search(t) for t in texts["baseline"]):
                out.add(ph.lower())
    return out


def marker_rise_shown(mb: np.ndarray, mt: np.ndarray, level: float, alpha: float, margin: float):
    """(shown, inference): the paired rise of the marker rate (McNemar test with continuity correction and the Tango
    interval that inverts it) is shown beyond the materiality ``margin``: the whole interval lies above it — H0
    "rise ≤ margin" rejected one-sided at (1 − level)/2 — and the test of no change rejects at α."""
    inf = stats.paired_inference(mb, mt, level=level)
    iv = inf.estimate.interval
    shown = bool(inf.estimate.value > 0 and inf.test.significant(alpha) and iv.ok and iv.low > margin)
    return shown, inf


def _marker_rows(ctx: Context, params: Params, p, found: dict) -> tuple[list[dict], dict]:
    """Per marker category and arm: the share of outputs with a marker (Wilson) and the accuracy of outputs with and
    without one; and each category's 0/1 presence per arm."""
    correct = {"baseline": p.baseline, "treatment": p.treatment}
    rows = []
    presence = {}
    for cat in ["any", *params.markers]:
        pres = {
            arm: (found[arm][cat] if cat in found[arm] else np.zeros(len(found[arm]["any"]), dtype=bool)).astype(float)
            for arm in found
        }
        presence[cat] = pres
        for arm in ("baseline", "treatment"):
            x = pres[arm]
            k, n = int(x.sum()), int(x.size)
            iv = stats.wilson(k, n, level=ctx.level)
            with_m, without_m = correct[arm][x == 1], correct[arm][x == 0]
            rows.append(
                {
                    "arm": arm,
                    "marker": cat,
                    "k": k,
                    "n": n,
                    "rate": k / n if n else math.nan,
                    "ci_low": iv.low,
                    "ci_high": iv.high,
                    "ci_method": iv.method,
                    "accuracy": float(np.mean(correct[arm])) if n else math.nan,
                    "accuracy_with_marker": float(np.mean(with_m)) if with_m.size else math.nan,
                    "accuracy_without_marker": float(np.mean(without_m)) if without_m.size else math.nan,
                }
            )
    return rows, presence


def _marker_delta_rows(ctx: Context, mb: np.ndarray, mt: np.ndarray, m_inf, corr: MeasuredCell) -> list[dict]:
    """The two delta rows: the marker rate (McNemar) and the claimed correctness, treatment − baseline."""
    m_test, m_delta = m_inf.test, m_inf.estimate
    c_iv = corr.interval
    return [
        {
            "quantity": "marker rate (any)",
            "baseline": float(mb.mean()),
            "treatment": float(mt.mean()),
            "delta": m_delta.value,
            "ci_low": m_delta.interval.low,
            "ci_high": m_delta.interval.high,
            "ci_method": m_delta.interval.method,
            "p_value": m_test.p_value,
            "test": f"{m_test.method} (two-sided)",
        },
        {
            "quantity": f"correctness ({ctx.claimed_scoring})",
            "baseline": corr.baseline,
            "treatment": corr.treatment,
            "delta": corr.delta.value,
            "ci_low": c_iv.low,
            "ci_high": c_iv.high,
            "ci_method": c_iv.method,
            "p_value": corr.test.p_value,
            "test": f"{corr.test.method} ({corr.test.alternative})",
        },
    ]


def _marker_stat(ctx: Context, params: Params, m_inf, corr: MeasuredCell, k_t: int) -> dict:
    """The statistic of the marker findings: the marker rise (McNemar), the correctness delta, the thresholds."""
    m_test, m_delta = m_inf.test, m_inf.estimate
    c_iv = corr.interval
    cb = ctx.claimed_budget
    return {
        "marker_delta": m_delta.value,
        "marker_ci_low": m_delta.interval.low,
        "marker_ci_high": m_delta.interval.high,
        "marker_p": m_test.p_value,
        "marker_test": m_test.method,
        "b": m_test.details.get("b"),
        "c": m_test.details.get("c"),
        "correctness_delta": corr.delta.value,
        "correctness_ci_low": c_iv.low,
        "correctness_ci_high": c_iv.high,
        "correctness_p": corr.test.p_value,
        "budget": cb,
        "scoring": ctx.claimed_scoring,
        "n": corr.n,
        "treatment_marker_outputs": k_t,
        "min_marker_outputs": params.min_marker_outputs,
        "min_marker_rise": params.min_marker_rise,
    }


def _markers_without_correctness(
    params: Params,
    p,
    mt: np.ndarray,
    k_t: int,
    m_txt: str,
    c_txt: str,
    stat: dict,
    delta_rows: list[dict],
    patterns: dict,
    treatment_texts,
    prov: dict,
) -> Finding:
    """The major flag: the treatment's markers rise (material, enough outputs) while its correctness does not."""
    return Finding(
        NAME,
        "markers_without_correctness",
        Outcome.flag,
        f"Disposition markers rise without correctness: {m_txt}, while {c_txt}",
        detail="The treatment says it verifies or hedges more often (McNemar rejects equal marker rates and the "
        f"whole interval of the rise lies above the materiality margin of {params.min_marker_rise:g}, on "
        f"{k_t} marker-bearing outputs) but is not significantly more often right: the surface of the "
        "disposition, not the behaviour.",
        severity=Severity.major,
        impact=Impact.none,
        statistic=stat,
        rows=delta_rows,
        evidence=_marker_evidence(params, p, mt, patterns, treatment_texts),
        provenance=prov,
    )


def _markers(
    ctx: Context, params: Params, p, corr: MeasuredCell, found: dict, patterns: dict, treatment_texts, prov: dict
) -> list[Finding]:
    """``corr``: the claimed cell (correctness); ``found``: :func:`marker_presence` per arm."""
    rows, presence = _marker_rows(ctx, params, p, found)
    mb, mt = presence["any"]["baseline"], presence["any"]["treatment"]
    shown, m_inf = marker_rise_shown(mb, mt, ctx.level, ctx.alpha, params.min_marker_rise)
    m_test, m_delta = m_inf.test, m_inf.estimate
    c_iv = corr.interval
    delta_rows = _marker_delta_rows(ctx, mb, mt, m_inf, corr)
    m_txt = (
        f"marker rate {mb.mean():.1%} → {mt.mean():.1%} ({fmt_delta(m_delta.value)} {fmt_ci(m_delta.interval)}, "
        f"McNemar p = {m_test.p_value:.3g})"
    )
    c_txt = f"correctness {fmt_delta(corr.delta.value)} {fmt_ci(c_iv)}"
    k_t = int(mt.sum())
    stat = _marker_stat(ctx, params, m_inf, corr, k_t)
    markers_rise = shown and k_t >= params.min_marker_outputs
    corr_up = ctx.gain(corr.delta.value) > 0 and (
        excludes_zero(c_iv) or (not c_iv.ok and corr.test.significant(ctx.alpha))
    )
    out = [
        Finding(
            NAME,
            "marker_rates",
            Outcome.info,
            f"Disposition markers per arm: {m_txt}; {c_txt}",
            detail="Rows: share of outputs with a marker per arm and category (Wilson interval), and the "
            "accuracy of outputs with and without one.",
            rows=rows + delta_rows,
            provenance=prov,
        )
    ]
    if markers_rise and not corr_up:
        out.append(
            _markers_without_correctness(
                params, p, mt, k_t, m_txt, c_txt, stat, delta_rows, patterns, treatment_texts, prov
            )
        )
    elif markers_rise:
        out.append(
            Finding(
                NAME,
                "markers_with_correctness",
                Outcome.passed,
                f"Disposition markers rise together with correctness: {m_txt}; {c_txt}",
                statistic=stat,
                rows=delta_rows,
                provenance=prov,
            )
        )
    elif m_delta.value > 0 and not corr_up:
        why = _unresolved_reason(ctx, params, shown, m_inf, k_t)
        out.append(
            Finding(
                NAME,
                "markers_unresolved",
                Outcome.inconclusive,
                f"Disposition markers rise without correctness, but not on evidence: {m_txt}; {c_txt}",
                detail=f"Not evidence: {why}.",
                severity=Severity.minor,
                impact=Impact.none,
                statistic=stat,
                rows=delta_rows,
                provenance=prov,
            )
        )
    return out


def _marker_evidence(params: Params, p, mt: np.ndarray, patterns: dict, treatment_texts) -> list[dict]:
    """The wrong treatment outputs that carry a marker, each with the phrases it holds."""
    mask = (mt == 1) & (p.treatment < 0.5)
    # The phrases of the outputs shown (item_evidence shows the first max_evidence of the mask).
    phrases = np.full(len(mask), "", dtype=object)
    for i in np.flatnonzero(mask)[: params.max_evidence]:
        phrases[i] = ", ".join(sum(find_markers(treatment_texts[i], patterns).values(), []))
    return item_evidence(p, mask, k=params.max_evidence, extra={"treatment_markers": phrases})


def _unresolved_reason(ctx: Context, params: Params, shown: bool, m_inf, k_t: int) -> str:
    """Why a marker rise without correctness is not evidence: not material, not significant, or too few outputs."""
    m_test, m_delta = m_inf.test, m_inf.estimate
    if not shown and m_test.significant(ctx.alpha) and m_delta.interval.ok and m_delta.interval.low > 0:
        return (
            f"the rise is significant but not shown beyond the materiality margin of "
            f"{params.min_marker_rise:g} (CI {fmt_ci(m_delta.interval)})"
        )
    if not shown:
        return f"the rise is not significant (McNemar p = {m_test.p_value:.3g}, CI {fmt_ci(m_delta.interval)})"
    return (
        f"only {k_t} treatment output(s) carry a marker; at least {params.min_marker_outputs} are needed "
        "before a rise counts as a pattern"
    )


@dataclass(frozen=True)
class _ArmConfidence:
    """One arm's stated confidence against its correctness."""

    auc: stats.Estimate | None  # DeLong AUC of stated confidence for correctness (None below 2 right and 2 wrong)
    mw: stats.TestResult | None  # one-sided Mann–Whitney test against 0.5
    row: dict


@dataclass(frozen=True)
class _ConfidenceCase:
    """What decides the treatment's confidence finding: its AUC against ``tracking_auc`` and against the baseline."""

    treatment: _ArmConfidence
    below: bool  # the AUC's interval lies wholly below tracking_auc
    effect: bool  # a treatment effect, not a level (see _confidence_effect)
    effect_txt: str  # the effect, said when shown
    no_effect_txt: str  # why it is not shown
    head: str
    stat: dict
    rows: list[dict]


def _arm_confidence(ctx: Context, params: Params, arm: str, c: np.ndarray, correct: np.ndarray) -> _ArmConfidence:
    """One arm's AUC of stated confidence for correctness, whether enough outputs state one, and its confident-wrong
    and hedged-right shares."""
    stated = np.isfinite(c)
    y = correct[stated]
    cs = c[stated]
    n = int(stated.sum())
    pos, neg = cs[y], cs[~y]
    row = {
        "arm": arm,
        "n_stated": n,
        "n_outputs": int(c.size),
        "n_correct": int(y.sum()),
        "n_wrong": int((~y).sum()),
        "mean_confidence": float(cs.mean()) if n else math.nan,
        "accuracy_when_stated": float(y.mean()) if n else math.nan,
    }
    k = params.min_confidence_per_class
    enough = n >= params.min_confidence_outputs and pos.size >= k and neg.size >= k
    auc: stats.Estimate | None
    mw: stats.TestResult | None
    if pos.size >= 2 and neg.size >= 2:
        auc = stats.auc_delong(pos, neg, level=ctx.level)
        mw = stats.auc_mann_whitney(pos, neg, "greater")
        row.update(
            {
                "auc": auc.value,
                "ci_low": auc.interval.low,
                "ci_high": auc.interval.high,
                "ci_method": auc.interval.method,
                "p_value": mw.p_value,
                "test": "mann-whitney (greater: AUC > 0.5)",
                "reason": auc.reason,
            }
        )
    else:
        auc = mw = None
        row.update({"auc": math.nan})
    if not enough:
        row["reason"] = (
            f"only {n} output(s) state a confidence ({int(pos.size)} right, {int(neg.size)} wrong); "
            f"at least {params.min_confidence_outputs} with {k} right and {k} wrong are needed"
        )
    row["enough"] = enough
    if n:
        cw = int(((cs >= params.confident_at) & ~y).sum())
        hr = int(((cs <= params.hedged_at) & y).sum())
        iv_cw, iv_hr = stats.wilson(cw, n, level=ctx.level), stats.wilson(hr, n, level=ctx.level)
        row.update(
            {
                "confident_wrong": cw,
                "confident_wrong_rate": cw / n,
                "confident_wrong_ci_low": iv_cw.low,
                "confident_wrong_ci_high": iv_cw.high,
                "hedged_right": hr,
                "hedged_right_rate": hr / n,
                "hedged_right_ci_low": iv_hr.low,
                "hedged_right_ci_high": iv_hr.high,
                "assertion_asymmetry": (cw - hr) / n,
            }
        )
    return _ArmConfidence(auc, mw, row)


def _confidence_prov(params: Params, prov: dict) -> dict:
    """The provenance of the confidence findings: the AUC method, the thresholds and the confidence mapping."""
    return {
        **prov,
        "confidence_auc": "DeLong variance (statsmodels rank_compare_2indep), CI on the logit scale; "
        "Mann-Whitney one-sided vs 0.5",
        "tracking_auc": params.tracking_auc,
        "min_confidence_outputs": params.min_confidence_outputs,
        "min_confidence_per_class": params.min_confidence_per_class,
        "confidence_mapping": {
            "numeric": "confidence: N% / confidence N / N% sure|confident",
            "levels": LEVEL_CONFIDENCE,
            "verbal": dict(VERBAL_CONFIDENCE),
        },
        "confident_at": params.confident_at,
        "hedged_at": params.hedged_at,
    }


def _confidence(ctx: Context, params: Params, p, conf: dict, prov: dict) -> list[Finding]:
    """Per arm, whether stated confidence goes with being right; whether the treatment's fails to, on evidence."""
    correct = {"baseline": p.baseline >= 0.5, "treatment": p.treatment >= 0.5}
    res = {arm: _arm_confidence(ctx, params, arm, conf[arm], correct[arm]) for arm in ("baseline", "treatment")}
    rows = [r.row for r in res.values()]
    prov = _confidence_prov(params, prov)
    out = [
        Finding(
            NAME,
            "confidence",
            Outcome.info,
            "Stated confidence vs correctness per arm: "
            + ", ".join(
                f"{r['arm']} {r['n_stated']}/{r['n_outputs']} state one"
                + (f", AUC {r['auc']:.3f}" if math.isfinite(r["auc"]) else "")
                for r in rows
            ),
            detail="AUC: does a higher stated confidence go with being right? Assertion asymmetry: share "
            f"confident (≥ {params.confident_at}) and wrong minus share hedged (≤ {params.hedged_at}) "
            "and right, among outputs that state a confidence.",
            rows=rows,
            provenance=prov,
        )
    ]
    auc_t, mw_t, row_t = res["treatment"].auc, res["treatment"].mw, res["treatment"].row
    auc_b = res["baseline"].auc
    # auc and mw are None together (_arm_confidence); min_confidence_per_class ≥ 2 makes "enough" imply neither is.
    head = (
        f"treatment confidence AUC {auc_t.value:.3f} {_fmt_iv(auc_t.interval)} (Mann–Whitney p = {mw_t.p_value:.3g})"
        if auc_t is not None and mw_t is not None
        else "treatment confidence AUC n/a"
    ) + (f" vs baseline {auc_b.value:.3f} {_fmt_iv(auc_b.interval)}" if auc_b else "")
    tau = params.tracking_auc
    stat = {
        "auc_treatment": auc_t.value if auc_t else None,
        "ci_low": auc_t.interval.low if auc_t else None,
        "ci_high": auc_t.interval.high if auc_t else None,
        "mw_p": mw_t.p_value if mw_t else None,
        "auc_baseline": auc_b.value if auc_b else None,
        "n_stated": row_t["n_stated"],
        "n_correct": row_t["n_correct"],
        "n_wrong": row_t["n_wrong"],
        "tracking_auc": tau,
        "min_confidence_outputs": params.min_confidence_outputs,
        "min_confidence_per_class": params.min_confidence_per_class,
        "assertion_asymmetry_treatment": row_t.get("assertion_asymmetry"),
        "confident_wrong_rate_treatment": row_t.get("confident_wrong_rate"),
        "hedged_right_rate_treatment": row_t.get("hedged_right_rate"),
    }
    if not row_t["enough"] or auc_t is None or mw_t is None:
        out.append(
            Finding(
                NAME,
                "confidence_too_few",
                Outcome.inconclusive,
                "Too few treatment outputs state a confidence to tell whether it tracks correctness"
                + (f": {head}" if auc_t is not None else ""),
                detail=f"Not evidence: {row_t['reason']}.",
                severity=Severity.minor,
                impact=Impact.none,
                statistic=stat,
                rows=rows,
                provenance=prov,
            )
        )
        return out
    iv = auc_t.interval
    below = iv.ok and iv.high < tau
    effect, effect_txt, no_effect_txt = _confidence_effect(ctx, params, conf, auc_t, res["baseline"], stat)
    case = _ConfidenceCase(res["treatment"], below, effect, effect_txt, no_effect_txt, head, stat, rows)
    out.append(_confidence_finding(ctx, params, case, prov))
    return out


def _confidence_effect(
    ctx: Context, params: Params, conf: dict, auc_t, base: _ArmConfidence, stat: dict
) -> tuple[bool, str, str]:
    """(shown, said when shown, said when not): whether the treatment's confidence is worse than the baseline's
    beyond ``auc_margin``, or, where the baseline states none, whether the statements themselves are new. Adds the
    numbers to ``stat``."""
    # A flag needs a treatment effect, not a level: where the baseline states confidence too, the treatment's AUC must
    # be below the baseline's by more than auc_margin (whole interval); where it does not, the statements themselves
    # are new (their rate rises beyond min_marker_rise, whole interval) and the treatment's AUC is below tau.
    if base.row["enough"] and base.auc is not None:
        cmp = stats.delong_unpaired(auc_t, base.auc, level=ctx.level)
        effect = bool(cmp.interval.ok and cmp.interval.high < -params.auc_margin)
        stat.update(
            auc_difference=cmp.diff,
            auc_difference_ci_low=cmp.interval.low,
            auc_difference_ci_high=cmp.interval.high,
            auc_margin=params.auc_margin,
        )
        effect_txt = (
            f"the treatment's AUC is below the baseline's by {-cmp.diff:.3f} "
            f"[{-cmp.interval.high:.3f}, {-cmp.interval.low:.3f}] (unpaired DeLong z, conservative for arms "
            f"on the same items), beyond the margin {params.auc_margin:g}"
        )
        no_effect_txt = (
            f"the baseline's stated confidence is as uninformative (AUC difference treatment − baseline "
            f"{cmp.diff:+.3f} {_fmt_iv(cmp.interval)}; a flag needs it wholly below "
            f"−{params.auc_margin:g})"
        )
        return effect, effect_txt, no_effect_txt
    sb = np.isfinite(conf["baseline"]).astype(float)
    st_ = np.isfinite(conf["treatment"]).astype(float)
    effect, st_inf = marker_rise_shown(sb, st_, ctx.level, ctx.alpha, params.min_marker_rise)
    siv = st_inf.estimate.interval
    stat.update(stating_rise=st_inf.estimate.value, stating_rise_ci_low=siv.low, stating_rise_ci_high=siv.high)
    effect_txt = (
        f"the baseline states a confidence in {sb.mean():.0%} of its outputs, the treatment in "
        f"{st_.mean():.0%} ({fmt_delta(st_inf.estimate.value)} {fmt_ci(siv)}, beyond the margin "
        f"{params.min_marker_rise:g}): the statements are the treatment's"
    )
    no_effect_txt = (
        f"the treatment does not state a confidence materially more often than the baseline "
        f"({fmt_delta(st_inf.estimate.value)} {fmt_ci(siv)}; a flag needs the whole interval above "
        f"{params.min_marker_rise:g})"
    )
    return effect, effect_txt, no_effect_txt


def _confidence_finding(ctx: Context, params: Params, case: _ConfidenceCase, prov: dict) -> Finding:
    """Whether the treatment's stated confidence is decoupled from correctness (major), uninformative like the
    baseline's (info), tracks it (pass), or is not resolved (inconclusive)."""
    head, stat, rows, tau = case.head, case.stat, case.rows, params.tracking_auc
    row_t = case.treatment.row
    if case.below and case.effect:
        return Finding(
            NAME,
            "confidence_decoupled",
            Outcome.flag,
            f"The treatment's stated confidence does not track its correctness: {head}, below {tau:g}",
            detail=f"The AUC's {ctx.level:.0%} interval lies wholly below {tau:g} (H0: AUC ≥ {tau:g} rejected, "
            f"one-sided at α = {(1 - ctx.level) / 2:.3g}), on {row_t['n_stated']} stating outputs "
            f"({row_t['n_correct']} right, {row_t['n_wrong']} wrong), and {case.effect_txt}. Confident and "
            f"wrong: {row_t['confident_wrong_rate']:.0%} of stating outputs; hedged and right: "
            f"{row_t['hedged_right_rate']:.0%}. Stated confidence that does not separate right from wrong "
            "answers is a style, not calibration.",
            severity=Severity.major,
            impact=Impact.none,
            statistic=stat,
            rows=rows,
            provenance=prov,
        )
    if case.below:
        return Finding(
            NAME,
            "confidence_like_baseline",
            Outcome.info,
            f"The treatment's stated confidence does not track its correctness, but no worse than the baseline's: "
            f"{head}",
            detail=f"Not a treatment effect: {case.no_effect_txt}.",
            statistic=stat,
            rows=rows,
            provenance=prov,
        )
    if case.treatment.mw is not None and case.treatment.mw.significant(ctx.alpha):  # not None when enough
        return Finding(
            NAME,
            "confidence_tracks",
            Outcome.passed,
            f"The treatment's stated confidence tracks its correctness: {head}",
            statistic=stat,
            provenance=prov,
        )
    return Finding(
        NAME,
        "confidence_unresolved",
        Outcome.inconclusive,
        f"Whether the treatment's stated confidence tracks its correctness is not resolved: {head}",
        detail=f"Not evidence either way: the Mann–Whitney test does not reject AUC = 0.5 at α = {ctx.alpha}, "
        f"and the interval reaches {tau:g}, so it does not show that confidence fails to track.",
        severity=Severity.minor,
        impact=Impact.none,
        statistic=stat,
        rows=rows,
        provenance=prov,
    )


def _fmt_iv(iv) -> str:
    return f"[{iv.low:.3f}, {iv.high:.3f}]" if iv.ok else "[n/a]"


SPEC = CheckSpec(
    NAME,
    run,
    Params,
    needs_samples=True,
    description="disposition markers (self-verification, hedges) vs correctness; stated confidence vs correctness",
)
"""This check in the registry (:data:`audit.checks.REGISTRY`)."""
