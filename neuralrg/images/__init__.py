"""Images: the MERA-like image model trained by maximum likelihood, its objective, and the data
(IDX/MNIST loading, the bundled 8x8 digits, dequantisation, the logit transform, bits per
dimension)."""

from neuralrg.images.mnist import (
    LogitTransform,
    bits_per_dim,
    dequantize,
    encode_idx,
    load_digits_8x8,
    load_mnist,
    pad_to_power_of_two,
    read_idx,
    split_train_heldout,
)
from neuralrg.images.model import (
    ImageFlowConfig,
    ImageModel,
    build_image_flow,
    evaluate_bits_per_dim,
    validate_image_flow_config,
)
from neuralrg.images.objective import MaximumLikelihood

__all__ = [
    "ImageFlowConfig",
    "ImageModel",
    "LogitTransform",
    "MaximumLikelihood",
    "bits_per_dim",
    "build_image_flow",
    "dequantize",
    "encode_idx",
    "evaluate_bits_per_dim",
    "load_digits_8x8",
    "load_mnist",
    "pad_to_power_of_two",
    "read_idx",
    "split_train_heldout",
    "validate_image_flow_config",
]
