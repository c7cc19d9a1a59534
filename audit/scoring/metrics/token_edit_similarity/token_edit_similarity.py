"""token_edit_similarity: audit's `token-edit-similarity` scorer as a Hugging Face evaluate metric (mean over items).

evaluate.load("<path to this folder>").compute(predictions=[...], references=[...])
"""

from audit.scoring.metrics import base as _base


class TokenEditSimilarity(_base.AuditMetric):
    scorer = "token-edit-similarity"
