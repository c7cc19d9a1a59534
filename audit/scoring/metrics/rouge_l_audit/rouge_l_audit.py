"""rouge_l_audit: audit's `rouge-l` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class RougeLAudit(_base.AuditMetric):
    scorer = "rouge-l"
