"""Tests for neuralrg.images.mnist: IDX I/O, MNIST loading, splits, padding, preprocessing."""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from neuralrg.images import (
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

# The real MNIST files, where the user says they are (the suite never looks outside the
# repository by itself): NEURALRG_MNIST_DIR=/path/to/mnist python3 dev.py test
REAL_MNIST = Path(os.environ.get("NEURALRG_MNIST_DIR", "/nonexistent"))
HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None


# ----------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("suffix", [".gz", ""], ids=["gzip", "raw"])
@pytest.mark.parametrize(
    "dtype",
    [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64],
    ids=lambda d: np.dtype(d).name,
)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (0, 2)], ids=["1d", "3d", "empty"])
def test_idx_round_trip(tmp_path, suffix, dtype, shape):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    else:
        array = rng.normal(size=shape).astype(dtype)
    path = tmp_path / f"array{suffix}"
    write_idx_file(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def write_idx_file(path, array):
    """An IDX file at ``path``, gzipped when its name ends with .gz."""
    path.write_bytes(encode_idx(array, compress=str(path).endswith(".gz")))


def test_idx_format_bytes_and_gzip_detected_by_content(tmp_path):
    path = tmp_path / "labels.gz"
    write_idx_file(path, np.array([7, 2, 1], dtype=np.uint8))
    raw = gzip.decompress(path.read_bytes())
    assert raw == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1])
    plain = tmp_path / "labels-idx1-ubyte"  # gzipped content without a .gz suffix
    plain.write_bytes(path.read_bytes())
    assert read_idx(plain).tolist() == [7, 2, 1]
    big_endian = tmp_path / "be"
    write_idx_file(big_endian, np.array([1, -2], dtype=">i4"))
    assert big_endian.read_bytes()[8:] == b"\x00\x00\x00\x01\xff\xff\xff\xfe"


def test_encode_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx_file(tmp_path / "x", np.zeros(3, dtype=np.int64))


def _valid_idx_bytes() -> bytes:
    return bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


BAD_FILES = {
    "bad magic": (b"\x01\x02" + _valid_idx_bytes()[2:], "magic"),
    "unknown dtype": (bytes([0, 0, 0x0A]) + _valid_idx_bytes()[3:], "dtype code 0x0A"),
    "truncated data": (_valid_idx_bytes()[:-1], "truncated IDX data"),
    "trailing garbage": (_valid_idx_bytes() + b"xyz", "trailing garbage"),
    "truncated header": (_valid_idx_bytes()[:6], "truncated IDX header"),
    "too short": (b"\x00\x00", "truncated IDX header"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_read_idx_bad_file_names_the_file(tmp_path, case, compress):
    content, expected = BAD_FILES[case]
    path = tmp_path / f"broken-{case.replace(' ', '_')}.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError, match=expected) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_valid_idx_bytes())[:-10])
    with pytest.raises(ValueError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere-idx3-ubyte"
    with pytest.raises(FileNotFoundError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- MNIST


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="NEURALRG_MNIST_DIR names no MNIST folder")
def test_load_mnist_shared_test_set():
    images, labels = load_mnist(REAL_MNIST, split="test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) == set(range(10))
    assert labels[0] == 7
    assert images.max() == 255 and images.min() == 0


def _write_fake_mnist(directory: Path, prefix: str, n: int, suffix: str, sep: str = "-"):
    rng = np.random.default_rng(len(prefix) + n)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    write_idx_file(directory / f"{prefix}-images{sep}idx3-ubyte{suffix}", images)
    write_idx_file(directory / f"{prefix}-labels{sep}idx1-ubyte{suffix}", labels)
    return images, labels


def test_load_mnist_any_directory_raw_gzip_and_all(tmp_path):
    train = _write_fake_mnist(tmp_path, "train", 5, "", sep=".")
    test = _write_fake_mnist(tmp_path, "t10k", 3, ".gz")
    for split, expected in [("train", [train]), ("test", [test]), ("all", [train, test])]:
        images, labels = load_mnist(str(tmp_path), split=split)
        np.testing.assert_array_equal(images, np.concatenate([e[0] for e in expected]))
        np.testing.assert_array_equal(labels, np.concatenate([e[1] for e in expected]))


def test_load_mnist_missing_files_lists_what_was_looked_for(tmp_path):
    _write_fake_mnist(tmp_path, "t10k", 2, ".gz")
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, split="all")
    message = str(info.value)
    assert str(tmp_path) in message
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte" in message
    assert "t10k" not in message
    with pytest.raises(FileNotFoundError, match="directory"):
        load_mnist(tmp_path / "absent")
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, split="validation")


def test_load_mnist_count_mismatch(tmp_path):
    _write_fake_mnist(tmp_path, "t10k", 4, "")
    write_idx_file(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="4 images.*3 labels"):
        load_mnist(tmp_path)


def test_load_digits_without_sklearn_suggests_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install neuralrg\[digits\]"):
        load_digits_8x8()


@pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn not installed (extra neuralrg[digits])")
def test_load_digits_8x8():
    images, labels = load_digits_8x8()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    assert set(np.unique(labels).tolist()) == set(range(10))


# ----------------------------------------------------------------------------- split, pad


def test_split_is_deterministic_disjoint_and_paired():
    images = np.arange(50, dtype=np.int64).reshape(50, 1, 1) * 3
    labels = np.arange(50) * 3
    (tx, ty), (hx, hy) = split_train_heldout(images, labels, n_heldout=12, seed=4)
    (tx2, _), (hx2, _) = split_train_heldout(images, labels, n_heldout=12, seed=4)
    (_, _), (hx3, _) = split_train_heldout(images, labels, n_heldout=12, seed=5)
    np.testing.assert_array_equal(tx, tx2)
    np.testing.assert_array_equal(hx, hx2)
    assert not np.array_equal(hx, hx3)
    assert len(ty) == 38 and len(hy) == 12
    assert set(ty.tolist()).isdisjoint(hy.tolist())
    assert sorted(ty.tolist() + hy.tolist()) == labels.tolist()
    np.testing.assert_array_equal(tx[:, 0, 0], ty)
    np.testing.assert_array_equal(hx[:, 0, 0], hy)


def test_split_rejects_bad_input():
    x, y = np.zeros((5, 2, 2)), np.zeros(5)
    with pytest.raises(ValueError, match="length"):
        split_train_heldout(x, y[:4], n_heldout=1, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        split_train_heldout(x, y, n_heldout=6, seed=0)
    with pytest.raises(ValueError, match="n_heldout=0.5 must be an integer"):
        split_train_heldout(x, y, n_heldout=0.5, seed=0)


@pytest.mark.parametrize(
    "shape, padded", [((28, 28), (32, 32)), ((8, 8), (8, 8)), ((5, 12), (8, 16)), ((1, 3), (1, 4))]
)
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pad_to_power_of_two(shape, padded, backend):
    images = np.arange(2 * shape[0] * shape[1], dtype=np.uint8).reshape(2, *shape) + 1
    if backend == "torch":
        images = torch.from_numpy(images)
    out = pad_to_power_of_two(images)
    assert type(out) is type(images) and tuple(out.shape) == (2, *padded)
    assert out.dtype == images.dtype
    top, left = (padded[0] - shape[0]) // 2, (padded[1] - shape[1]) // 2
    inner = out[:, top : top + shape[0], left : left + shape[1]]
    np.testing.assert_array_equal(np.asarray(inner), np.asarray(images))
    assert int(out.sum()) == int(images.sum())  # everything else is zero


def test_pad_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        pad_to_power_of_two(np.zeros((28, 28)))


# ----------------------------------------------------------------------------- dequantise, logit


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dequantize_range_and_determinism(dtype):
    x = torch.arange(256, dtype=torch.uint8).repeat(40, 1)
    y = dequantize(x, torch.Generator().manual_seed(1), dtype=dtype)
    y_again = dequantize(x.numpy(), torch.Generator().manual_seed(1), dtype=dtype)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(y, y_again)
    assert (y >= 0).all() and (y < 1).all()
    assert torch.equal(torch.floor(y * 256).long(), x.long())


def test_dequantize_stays_below_one_in_low_precision():
    x = torch.full((4000,), 255, dtype=torch.uint8)
    y = dequantize(x, torch.Generator().manual_seed(0), dtype=torch.float16)
    assert (y < 1).all()


def test_dequantize_rejects_bad_input():
    with pytest.raises(TypeError, match="integer"):
        dequantize(torch.rand(3))
    with pytest.raises(ValueError, match="0..255"):
        dequantize(torch.tensor([0, 300]))


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.3])
def test_logit_log_det_matches_autograd(alpha):
    transform = LogitTransform(alpha)
    y = torch.rand(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = y.clamp(1e-3, 1 - 1e-3).requires_grad_(True)
    z, log_det = transform(y)
    (derivative,) = torch.autograd.grad(z.sum(), y)  # the map is elementwise
    assert log_det.shape == (3,) and log_det.dtype == torch.float64
    torch.testing.assert_close(log_det, derivative.abs().log().sum(dim=(1, 2)))
    patch = y[0, :2, :3].detach()  # full Jacobian of a 2x3 image
    jacobian = torch.func.jacrev(lambda v: transform(v[None])[0][0])(patch).reshape(6, 6)
    expected = torch.linalg.slogdet(jacobian).logabsdet
    torch.testing.assert_close(transform(patch[None])[1][0], expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logit_inverse_round_trip(dtype):
    transform = LogitTransform(alpha=0.05)
    y = dequantize(torch.randint(0, 256, (6, 8, 8)), torch.Generator().manual_seed(3), dtype)
    z, log_det = transform(y)
    y_back, inverse_log_det = transform.inverse(z)
    assert z.dtype == dtype and y_back.dtype == dtype and torch.isfinite(z).all()
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(y_back, y, atol=tolerance, rtol=0)
    torch.testing.assert_close(inverse_log_det, -log_det)


def test_logit_rejects_bad_alpha():
    for alpha in (-0.1, 0.5, 1.0):
        with pytest.raises(ValueError, match="alpha"):
            LogitTransform(alpha)


# ----------------------------------------------------------------------------- bits per dim


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_dims", [1, 64, 784, 1024])
def test_bits_per_dim_uniform_is_exactly_eight(dtype, n_dims):
    bits = bits_per_dim(torch.zeros(5, dtype=dtype), n_dims)
    assert bits.dtype == dtype
    assert torch.equal(bits, torch.full((5,), 8.0, dtype=dtype))
    assert bits_per_dim(0.0, n_dims).item() == 8.0


def test_bits_per_dim_constant_density():
    # q_y = 2^D on [0, 1/2)^D saves exactly one bit per dimension.
    n_dims = 784
    bits = bits_per_dim(torch.tensor(n_dims * math.log(2), dtype=torch.float64), n_dims)
    assert bits.item() == pytest.approx(7.0, abs=1e-14)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_bits_per_dim_logistic_latent_through_logit(alpha):
    # A standard logistic density on z makes s = sigmoid(z) uniform, so q_y = (1 - 2 alpha)^D
    # on its support: bits/dim = 8 - log2(1 - 2 alpha), for every sample.
    transform = LogitTransform(alpha)
    y = dequantize(
        torch.randint(0, 256, (16, 8, 8)), torch.Generator().manual_seed(4), dtype=torch.float64
    )
    z, log_det = transform(y)
    log_q_z = (torch.nn.functional.logsigmoid(z) + torch.nn.functional.logsigmoid(-z)).sum((1, 2))
    bits = bits_per_dim(log_q_z + log_det, n_dims=64)
    torch.testing.assert_close(bits, torch.full_like(bits, 8 - math.log2(1 - 2 * alpha)))


def test_bits_per_dim_beta_model_cross_entropy():
    # Uniform data scored by a product of Beta(2, 1) densities q(y) = 2y:
    # E[-ln q] = 1 - ln 2 per pixel, so bits/dim -> 8 + (1 - ln 2) / ln 2.
    n_images, n_dims = 2000, 256
    generator = torch.Generator().manual_seed(5)
    y = torch.rand(n_images, n_dims, dtype=torch.float64, generator=generator)
    log_q = torch.from_numpy(stats.beta(2, 1).logpdf(y.numpy())).sum(dim=1)
    bits = bits_per_dim(log_q, n_dims)
    standard_error = 1 / math.log(2) / math.sqrt(n_images * n_dims)  # Var[ln y] = 1
    expected = 8 + (1 - math.log(2)) / math.log(2)
    assert abs(bits.mean().item() - expected) < 5 * standard_error


def test_bits_per_dim_rejects_bad_n_dims():
    for n_dims in (0, -3, True, 2.0):
        with pytest.raises(ValueError, match="n_dims"):
            bits_per_dim(torch.zeros(2), n_dims)
