"""exact_match_audit: audit's `exact` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class ExactMatchAudit(_base.AuditMetric):
    scorer = "exact"
