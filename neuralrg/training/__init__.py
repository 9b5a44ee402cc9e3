"""Training by probability density distillation: the trainer and its loop (:mod:`.trainer`),
the loss terms (:mod:`.objective`)."""

from neuralrg.training.objective import (
    FORWARD_SCHEDULES,
    LossConfig,
    Objective,
    StepOutcome,
    validate_loss_config,
)
from neuralrg.training.trainer import (
    LR_SCHEDULES,
    NonFiniteParameters,
    TrainConfig,
    Trainer,
    TrainResult,
    cosine_factor,
    fit,
    gap_per_site,
    loss_statistics,
    relative_gap,
    validate_train_config,
)

__all__ = ["FORWARD_SCHEDULES", "LR_SCHEDULES", "LossConfig", "NonFiniteParameters",
           "Objective", "StepOutcome", "TrainConfig", "TrainResult", "Trainer", "cosine_factor",
           "fit", "gap_per_site", "loss_statistics", "relative_gap", "validate_loss_config",
           "validate_train_config"]
