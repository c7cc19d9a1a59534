"""Items that share a passage or template: cluster-robust standard errors (options.cluster_field)."""
from __future__ import annotations

import numpy as np
import pytest

from audit.claim import load_claim
from audit.errors import InputError
from audit.importers import load_records
from audit.verify import verify
from conftest import jsonl_claim


def clustered_logs(n_clusters=12, per=5, seed=0):
    """Outcomes shared within a passage: both arms' correctness is decided per cluster, not per item."""
    rng = np.random.default_rng(seed)
    base, treat, groups = [], [], []
    for c in range(n_clusters):
        b, t = int(rng.random() < 0.4), int(rng.random() < 0.75)
        for _ in range(per):
            base.append(b)
            treat.append(t)
            groups.append(f"passage-{c}")
    def rows(correct):
        return [{"id": f"q{i:03d}", "output": "1" if c else "0", "target": "1", "passage": g}
                for i, (c, g) in enumerate(zip(correct, groups))]
    return {"logs/base_16.jsonl": rows(base), "logs/treat_16.jsonl": rows(treat)}, np.array(base), np.array(treat), groups


def test_cluster_robust_interval_matches_statsmodels(claim_dir):
    logs, base, treat, groups = clustered_logs()
    c = jsonl_claim([16], 16)
    c["options"]["cluster_field"] = "passage"
    out = verify(load_claim(claim_dir(c, logs)))
    (cell,) = out.report.cells
    assert cell.ci_method == "cluster-t" and cell.test.startswith("cluster-t")
    import statsmodels.api as sm

    d = treat - base
    fit = sm.OLS(d, np.ones_like(d, dtype=float)).fit(cov_type="cluster", cov_kwds={"groups": np.array(
        [int(g.split("-")[1]) for g in groups])})
    se = float(fit.bse[0])
    from scipy.stats import t as student

    # Cluster-robust SE (statsmodels CR1) with a t reference on C − 1 = 11 degrees of freedom.
    q = student.ppf(0.975, 11)
    assert (cell.ci_low, cell.ci_high) == pytest.approx((d.mean() - q * se, d.mean() + q * se), rel=1e-9)
    assert cell.p_value == pytest.approx(2 * student.sf(abs(d.mean() / se), 11), rel=1e-9)
    # Treating the 60 items as independent would understate the uncertainty of 12 passages.
    unclustered = verify(load_claim(claim_dir(jsonl_claim([16], 16), logs, name="plain.yaml"))).report.cells[0]
    assert (cell.ci_high - cell.ci_low) > 1.5 * (unclustered.ci_high - unclustered.ci_low)


def test_missing_cluster_is_an_input_error(claim_dir):
    logs, *_ = clustered_logs()
    del logs["logs/treat_16.jsonl"][3]["passage"]
    c = jsonl_claim([16], 16)
    c["options"]["cluster_field"] = "passage"
    with pytest.raises(InputError) as exc:
        load_records(load_claim(claim_dir(c, logs)))
    (prob,) = exc.value.problems
    assert "cluster_field 'passage' is missing on 1 row(s)" in prob.message and prob.line == 4


def unequal_table_logs():
    """The fixed table of issue 17: 5 passages of 200/10/10/10/10 items, both arms 0/1; the treatment gains +0.15 in
    the big passage (30 items baseline 0 → treatment 1, the rest unchanged) and exactly 0 in each small one (one item
    gained, one lost)."""
    base, treat, groups = [], [], []
    base += [0] * 30 + [1] * 70 + [0] * 100
    treat += [1] * 30 + [1] * 70 + [0] * 100
    groups += ["passage-0"] * 200
    for g in range(1, 5):
        base += [0, 1] + [0, 1, 0, 1, 0, 1, 0, 1]
        treat += [1, 0] + [0, 1, 0, 1, 0, 1, 0, 1]
        groups += [f"passage-{g}"] * 10

    def rows(correct):
        return [{"id": f"q{i:03d}", "output": "1" if c else "0", "target": "1", "passage": g}
                for i, (c, g) in enumerate(zip(correct, groups))]

    logs = {"logs/base_16.jsonl": rows(base), "logs/treat_16.jsonl": rows(treat)}
    return logs, np.array(base, float), np.array(treat, float), np.array(groups)


def test_one_dominant_passage_is_inconclusive(claim_dir):
    """CR1 with C − 1 = 4 df called this gain significant (t = 4.8, p = 0.0087): the big passage's residual sum is
    nearly 0 by construction. CR2 with Bell–McCaffrey df (1.31) gives p = 0.20; the jackknife (p = 0.30) and a t-test
    on the 5 passage means (p = 0.37) agree that the data cannot tell."""
    logs, base, treat, groups = unequal_table_logs()
    c = jsonl_claim([16], 16)
    c["options"]["cluster_field"] = "passage"
    out = verify(load_claim(claim_dir(c, logs)))
    assert out.report.verdict == "inconclusive", out.report.verdict_reason
    (cell,) = out.report.cells
    assert cell.ci_method == "cluster-t" and cell.delta == pytest.approx(0.125)
    assert cell.p_value == pytest.approx(0.2010, abs=5e-4) and cell.ci_low < 0 < cell.ci_high
    (few,) = [f for f in out.findings if f.code == "few_clusters"]
    assert few.statistic["df"] == pytest.approx(1.3127, abs=5e-4)
    (uneq,) = [f for f in out.findings if f.code == "unequal_clusters"]
    assert uneq.severity == "minor" and uneq.impact == "none"
    assert uneq.statistic["largest_cluster_share"] == pytest.approx(200 / 240)
    assert uneq.statistic["threshold"] == pytest.approx(2 / 5)
    # CR1 with t(C − 1), the old rule, on the same data: significant, which is what the issue reported.
    import statsmodels.api as sm
    from scipy.stats import t as student

    d = treat - base
    codes = np.unique(groups, return_inverse=True)[1]
    se1 = float(sm.OLS(d, np.ones_like(d)).fit(cov_type="cluster", cov_kwds={"groups": codes}).bse[0])
    assert 2 * student.sf(d.mean() / se1, 4) == pytest.approx(0.0087, abs=5e-4)


def test_equal_clusters_raise_no_unequal_warning(claim_dir):
    logs, *_ = clustered_logs()
    c = jsonl_claim([16], 16)
    c["options"]["cluster_field"] = "passage"
    out = verify(load_claim(claim_dir(c, logs)))
    assert not [f for f in out.findings if f.code == "unequal_clusters"]
    (few,) = [f for f in out.findings if f.code == "few_clusters"]
    assert few.statistic["df"] == pytest.approx(11)  # equal clusters: Bell–McCaffrey df is C − 1
