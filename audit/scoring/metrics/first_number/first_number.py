"""first_number: audit's `first-number` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class FirstNumber(_base.AuditMetric):
    scorer = "first-number"
