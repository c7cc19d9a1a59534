"""last_number: audit's `last-number` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class LastNumber(_base.AuditMetric):
    scorer = "last-number"
