"""edit_similarity: audit's `edit-similarity` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class EditSimilarity(_base.AuditMetric):
    scorer = "edit-similarity"
