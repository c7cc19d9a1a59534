"""chrf_audit: audit's `chrf` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class ChrfAudit(_base.AuditMetric):
    scorer = "chrf"
