"""bleu_audit: audit's `bleu` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class BleuAudit(_base.AuditMetric):
    scorer = "bleu"
