"""The one implementation behind every module in :mod:`audit.scoring.metrics`: the mean of a built-in scorer.

Modules subclass :class:`AuditMetric` through the module object (``from audit.scoring.metrics import base as _base``),
never by importing the class name: ``evaluate`` takes the first metric class in a module's namespace as its main
class, and that must be the module's own.
"""

from __future__ import annotations

import datasets
import evaluate

_CITATION = """\
@misc{audit,
  title = {audit: does a claimed benchmark gain survive honest scrutiny?},
}
"""

_INPUTS = """
Args:
    predictions (list of str): model outputs.
    references (list of str): targets, one per prediction.
Returns:
    <module name> (float): mean over the items of audit's `{scorer}` scorer, in [0, 1].
"""


class AuditMetric(evaluate.Metric):
    """Mean of :data:`audit.scoring.SCORERS`\\ [``scorer``] over (prediction, reference) pairs."""

    scorer: str = ""
    description: str = ""

    def _info(self) -> evaluate.MetricInfo:
        from audit.scoring.builtin import SCORERS

        doc = (SCORERS[self.scorer].__doc__ or "").strip()
        return evaluate.MetricInfo(
            description=self.description or doc,
            citation=_CITATION,
            inputs_description=_INPUTS.format(scorer=self.scorer),
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=[],
        )

    def _compute(self, predictions, references):
        from audit.scoring.builtin import SCORERS

        fn = SCORERS[self.scorer]
        scores = [fn(p or "", r or "") for p, r in zip(predictions, references)]
        return {self.name: sum(scores) / len(scores) if scores else float("nan")}
