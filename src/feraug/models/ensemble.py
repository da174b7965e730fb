"""``ensemble``: several trained classifiers averaged into one model.

The members' log-probabilities are averaged (the normalised geometric mean of their
probabilities) and passed through a ``K x K`` linear layer that starts as the identity. That
final layer is the ensemble's classifier head: ``feraug adjust`` folds a logit adjustment
into its bias exactly as for a single network, and export and prediction need nothing new.

An ensemble is not trained: ``feraug ensemble A.pt B.pt ... --out E.pt`` assembles it from
checkpoints that ``feraug train`` wrote (see :mod:`feraug.classifier.ensemble`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from feraug.errors import ConfigError


class Ensemble(nn.Module):
    """Mean of the members' log-softmax outputs, then an identity-initialised linear head."""

    def __init__(self, members: list[nn.Module], num_classes: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.combine = nn.Linear(num_classes, num_classes)
        with torch.no_grad():
            self.combine.weight.copy_(torch.eye(num_classes))
            self.combine.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([F.log_softmax(m(x).float(), dim=1) for m in self.members])
        return self.combine(logp.mean(0))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The members' penultimate features side by side (for t-SNE)."""
        return torch.cat([m.embed(x) for m in self.members], dim=1)


def build(num_classes: int, in_size: int = 48, members: list[str] | None = None,
          **_: object) -> nn.Module:
    """An ensemble of untrained members named by their registry names (weights come from the
    checkpoint)."""
    from feraug.models import build_classifier

    if not members:
        raise ConfigError("an ensemble is assembled from trained checkpoints with "
                          "`feraug ensemble A.pt B.pt ... --out E.pt`; it is not trained")
    return Ensemble([build_classifier(name, num_classes, in_size) for name in members],
                    num_classes)
