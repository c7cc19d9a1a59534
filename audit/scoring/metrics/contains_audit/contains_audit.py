"""contains_audit: audit's `contains` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class ContainsAudit(_base.AuditMetric):
    scorer = "contains"
