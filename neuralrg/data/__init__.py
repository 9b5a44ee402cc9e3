"""Image data: IDX/MNIST loading, the bundled 8x8 digits, dequantisation and logit transform."""

from neuralrg.data.mnist import (
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

__all__ = [
    "LogitTransform",
    "bits_per_dim",
    "dequantize",
    "load_digits_8x8",
    "load_mnist",
    "pad_to_power_of_two",
    "read_idx",
    "split_train_heldout",
    "encode_idx",
]
