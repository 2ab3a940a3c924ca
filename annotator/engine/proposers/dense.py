"""The dense proposer: every pixel labelled by its own features (the heads path)."""

from __future__ import annotations

from typing import Any

from annotator.engine.proposal import Proposal
from annotator.engine.proposers.base import ProposerInput


class DenseProposer:
    """Per-pixel softmax of the (zero-shot or adapted) logits, refined, upsampled, thresholded."""

    name = "dense"

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def propose(self, segmenter: Any, inputs: ProposerInput) -> Proposal:
        zero_shot = inputs.adapter is None
        return segmenter._finish(
            inputs.state, inputs.names, inputs.logits, inputs.groups, zero_shot=zero_shot
        )
