"""first_line_exact: audit's `first-line-exact` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class FirstLineExact(_base.AuditMetric):
    scorer = "first-line-exact"
