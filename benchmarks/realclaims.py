"""Real-claims benchmark: the audit's verdicts on real, published third-party outputs, against the verdict expected
(and why) written down before the audit was run.

    python benchmarks/realclaims.py [--out benchmarks/realclaims] [--only NAME ...]

Each case is a fixture claim written as its source publishes it (fixtures/claims/, reading ../shared/data/ beside
the repository as published: no conversion script). For each, the script runs ``audit.verify.verify`` and records
the verdict, the claimed cell and every major or critical flag. A case passes when the verdict is the expected one
and every major/critical flag is among those the case lists as reviewed (each with the reason a reviewer would
accept it); an unreviewed flag fails the case, so a new false alarm cannot slip in. Writes REALCLAIMS.md and
realclaims.json into --out and exits 1 when a case fails. Not part of the default test run (it reads ~100 MB of
outputs and takes about a minute).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Case:
    name: str
    claim: str
    expected: str
    why: str  # written before the audit was first run
    reviewed_flags: dict[str, str] = field(default_factory=dict)  # "check.code" → why a reviewer would accept it
    # When the first run showed the expectation wrong and the tool right: the expectation as first written, and why
    # it was revised (kept, so the table shows both).
    expected_before: str | None = None
    revised: str = ""


CASES = [
    Case("MMLU-Pro: Mistral-7B base vs instruct", "mmlu_pro_mistral.yaml", "not_reproduced",
         "The authors' own outputs give the instruct model 0.242 against the base model's 0.298 (stored pred, "
         "12,032 items): the expected gain of instruction tuning is significantly reversed. Much of the gap is "
         "outputs with no extractable answer (15.5% vs 10.4%), which the extraction check should show; no "
         "mimicry flag should come from chain-of-thought words.",
         reviewed_flags={"significance.reversed": "the verdict's own evidence: instruct is 5.6 points below base, "
                                                  "McNemar p = 5e-35 on 12,032 paired questions"}),
    Case("ZeroEval MATH-L5: Llama-3.1-8B vs 70B", "zeroeval_mathl5_8b_vs_70b.yaml", "supported",
         "A +21-point gain of a model 9x larger on 721 items is far beyond any scorer effect: it should reproduce "
         "under the authors' scorer (22.19 vs 43.13) and hold under a robust re-scoring that reads \\boxed{} answers "
         "fully. The 8B model's many no-answers (19.4% vs 12.2%) and run-on outputs are findings, not a reversal."),
    Case("ZeroEval MATH-L5: Llama-3.1-70B local vLLM vs Hyperbolic API", "zeroeval_mathl5_70b_local_vs_api.yaml",
         "inconclusive",
         "The same model, greedy, on two servers: a 7.4-point 'provider gap' is implausible as a capability "
         "difference. The leaderboard compares 721 items with 425; on the 425 shared items the authors' scorer "
         "should still favour the local run, because the API run ends most answers in \\boxed{} (which the "
         "Llama-specific fallback extracts only for plain alphanumerics), and a robust scoring that reads the "
         "boxed answer fully should make the gap vanish: fragile, with a major finding on the item sets.",
         expected_before="fragile",
         revised="The first run showed the premise of 'fragile' false: on the 425 shared items the authors' scorer "
                 "gives the local run only +3.3 points [-1.5, +8.2] (McNemar p = 0.19), so there is no reproduced "
                 "gain for a perturbation to break; most of the published 7.4 points come from the 296 items the API "
                 "run never reached. 'inconclusive' is what the evidence supports; the two flags carry the finding.",
         reviewed_flags={"item_sets.different_items": "the leaderboard compares 721 items with 425: the defect "
                                                      "the comparison rests on",
                         "scoring.vanishes": "under a robust scoring the gap moves from +3.3 to -3.5 points, a "
                                             "change of -6.8 [significant, beyond the 3.7-point margin]: the "
                                             "authors' scorer favours the local run's JSON answers over the API "
                                             "run's \\boxed{} answers"}),
    Case("Reflexion vs single attempt, GPT-4, MBPP", "reflexion_mbpp.yaml", "inconclusive",
         "The paper's own table shows Reflexion 3.0 points below a single attempt (306 vs 318 of 397). A "
         "difference of 12 net items on 397 paired problems is within what the discordant pairs allow: neither "
         "the loss the paper explains nor a gain can be established from these files."),
    Case("AlpacaEval 2.0: claude-2.1 default vs concise", "alpacaeval2_concise.yaml", "supported",
         "Default vs concise on the same 805 instructions against one reference: a 6.5-point win-rate gap on "
         "continuous judge preferences, paired by instruction, is well resolved. The length difference (about 2x) "
         "is the known confound and should be shown beside the gain, not turn the verdict (the length-controlled "
         "win rate keeps most of the gap)."),
]


def run_case(case: Case, seed: int) -> dict:
    from audit.claim import load_claim
    from audit.findings import Outcome, Severity
    from audit.verify import verify

    t0 = time.perf_counter()
    claim = load_claim(REPO / "fixtures" / "claims" / case.claim)
    out = verify(claim, seed=seed, command=f"audit verify fixtures/claims/{case.claim}")
    rep = out.report
    flags = [{"id": f"{f.check}.{f.code}", "severity": str(f.severity), "impact": str(f.impact), "title": f.title}
             for f in rep.findings if f.outcome == Outcome.flag and f.severity in (Severity.major, Severity.critical)]
    unreviewed = [f for f in flags if f["id"] not in case.reviewed_flags]
    claimed = next((c for c in rep.cells if c.claimed), None)
    return {
        "name": case.name, "claim": case.claim, "expected": case.expected, "why": case.why,
        "expected_before": case.expected_before, "revised": case.revised,
        "verdict": str(rep.verdict), "reason": rep.verdict_reason, "passed": str(rep.verdict) == case.expected
        and not unreviewed, "flags": flags, "unreviewed_flags": unreviewed,
        "reviewed": {k: v for k, v in case.reviewed_flags.items()},
        "claimed_cell": None if claimed is None else {
            "n": claimed.n, "baseline": claimed.baseline, "treatment": claimed.treatment, "delta": claimed.delta,
            "ci_low": claimed.ci_low, "ci_high": claimed.ci_high, "ci_method": claimed.ci_method,
            "p_value": claimed.p_value, "test": claimed.test},
        "seconds": round(time.perf_counter() - t0, 1),
    }


def markdown(results: list[dict]) -> str:
    lines = ["# Real-claims benchmark", "", "`python benchmarks/realclaims.py` (`make realclaims`). Expected verdicts "
             "were written before the audit was run; see benchmarks/realclaims.py for each reason.", "",
             "| claim | expected | got | measured delta at the claimed setting | major/critical flags | ok |",
             "|---|---|---|---|---|---|"]
    for r in results:
        c = r["claimed_cell"]
        cell = ("—" if c is None else f"{c['delta']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], n = {c['n']}")
        fl = ", ".join(sorted({f["id"] for f in r["flags"]})) or "none"
        exp = r["expected"] + (f" (first written: {r['expected_before']})" if r.get("expected_before") else "")
        lines.append(f"| {r['name']} | {exp} | {r['verdict']} | {cell} | {fl} | "
                     f"{'yes' if r['passed'] else 'NO'} |")
    lines += [""]
    for r in results:
        lines += [f"## {r['name']}", "", f"- expected **{r.get('expected_before') or r['expected']}**: {r['why']}"]
        if r.get("expected_before"):
            lines.append(f"- revised to **{r['expected']}** after the first run: {r['revised']}")
        lines.append(f"- got **{r['verdict']}**: {r['reason']}")
        for f in r["flags"]:
            note = r["reviewed"].get(f["id"], "UNREVIEWED")
            lines.append(f"- flag `{f['id']}` ({f['severity']}): {f['title']} — {note}")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "realclaims")
    ap.add_argument("--only", nargs="*", default=None, help="claim file names to run")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    data = REPO.parent / "shared" / "data"
    if not data.is_dir():
        print(f"the real outputs are not there: {data} (copy shared/ beside the repository)", file=sys.stderr)
        return 2
    cases = [c for c in CASES if not args.only or c.claim in args.only]
    results = []
    for case in cases:
        r = run_case(case, args.seed)
        results.append(r)
        print(f"{'ok ' if r['passed'] else 'NO '} {r['name']}: expected {r['expected']}, got {r['verdict']} "
              f"({r['seconds']} s)" + (f"; unreviewed flags: {[f['id'] for f in r['unreviewed_flags']]}"
                                        if r["unreviewed_flags"] else ""), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.only:
        (args.out / "realclaims.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (args.out / "REALCLAIMS.md").write_text(markdown(results) + "\n")
    failed = [r["name"] for r in results if not r["passed"]]
    print(f"SUMMARY: {len(results) - len(failed)} of {len(results)} real claims as expected"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
