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
