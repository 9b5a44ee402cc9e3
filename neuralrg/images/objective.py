"""The maximum-likelihood objective of the image model: bits per dimension of training
pictures, for :class:`~neuralrg.training.Trainer`."""

from __future__ import annotations

import torch
from torch import Tensor

from neuralrg.training.objective import StepOutcome


class MaximumLikelihood:
    """Maximum-likelihood objective for :class:`~neuralrg.training.Trainer` (``model`` an
    :class:`~neuralrg.images.ImageModel`).

    Each call draws ``batch_size`` training pictures and fresh dequantisation noise from the
    trainer's generator and returns their mean bits/dim as the loss (the per-image values,
    negated, fill ``log_w``, so the logged ``loss`` is the training bits/dim).
    """

    def __init__(self, model, padded: Tensor, batch_size: int):
        self.model, self.padded, self.batch_size = model, padded, batch_size

    def __call__(self, progress: float, generator: torch.Generator) -> StepOutcome:
        index = torch.randint(len(self.padded), (self.batch_size,), generator=generator,
                              device=generator.device).to(self.padded.device)
        bits = self.model.bits_per_dim(self.padded[index], generator)
        return StepOutcome(bits.mean(), -bits.detach(), None)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
