"""Image data: IDX files (MNIST), a bundled 8x8 alternative, and invertible preprocessing.

Images are 8-bit grey, ``(n, H, W)`` uint8. For density modelling they are dequantised
to y = (x + u) / 256 in [0, 1)^D and mapped to the real line by a logit transform with an
exact log-determinant; :func:`bits_per_dim` then reports the standard 8-bit score.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from neuralrg.validation import check_choice, check_int

# IDX dtype code -> big-endian numpy dtype (the codes of the original MNIST format).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_MNIST_PREFIXES = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({error})") from error


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzipped, detected from its content) into a native-endian array.

    >>> import tempfile, numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "a.idx.gz"
    >>> _ = path.write_bytes(encode_idx(np.arange(6, dtype=np.int16).reshape(2, 3), True))
    >>> read_idx(path).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need at least 4)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: bad IDX magic {data[:4].hex()} (must start with two zero bytes); "
            "not an IDX file"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02X} (allowed: {allowed})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise ValueError(
            f"{path}: truncated IDX data: shape {shape} needs {expected} bytes, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{path}: {found - expected} bytes of trailing garbage after the IDX data "
            f"of shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def encode_idx(array: np.ndarray, compress: bool = False) -> bytes:
    """The bytes of ``array`` as an IDX file (gzipped with ``compress``), for whoever writes it.

    Allowed dtypes: uint8, int8, int16, int32, float32, float64.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        allowed = ", ".join(str(d) for d in _IDX_CODES)
        raise TypeError(f"cannot write dtype {array.dtype} as IDX (allowed: {allowed})")
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"shape {array.shape} does not fit the IDX header")
    header = bytes([0, 0, _IDX_CODES[native], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(native.newbyteorder(">")).tobytes()
    return gzip.compress(payload, mtime=0) if compress else payload


def _find_idx(directory: Path, prefix: str, kind: str, idx: str) -> tuple[Path | None, list[str]]:
    names = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
    names = [n + ext for n in names for ext in ("", ".gz")]
    found = next((directory / n for n in names if (directory / n).is_file()), None)
    return found, names


def load_mnist(data_dir: str | Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST-format IDX files from ``data_dir`` as ``(images (n, 28, 28), labels (n,))``.

    ``split`` is ``"test"`` (t10k-*), ``"train"`` (train-*) or ``"all"`` (train then test).
    Files may be raw or gzipped, named ``t10k-images-idx3-ubyte[.gz]`` or
    ``t10k-images.idx3-ubyte[.gz]`` (likewise for labels and train).

    >>> images, labels = load_mnist("path/to/mnist")  # doctest: +SKIP
    >>> images.shape, images.dtype, labels[0]  # doctest: +SKIP
    ((10000, 28, 28), dtype('uint8'), 7)
    """
    splits = {"test": ["test"], "train": ["train"], "all": ["train", "test"]}
    check_choice("split", split, sorted(splits))
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST data directory not found: {directory}")
    files, missing = {}, []
    for part in splits[split]:
        for kind, idx in (("images", "idx3"), ("labels", "idx1")):
            path, tried = _find_idx(directory, _MNIST_PREFIXES[part], kind, idx)
            files[part, kind] = path
            if path is None:
                missing.append(f"{part} {kind} (looked for {', '.join(tried)})")
    if missing:
        raise FileNotFoundError(f"MNIST files missing in {directory}: " + "; ".join(missing))
    images, labels = [], []
    for part in splits[split]:
        x, y = read_idx(files[part, "images"]), read_idx(files[part, "labels"])
        _check_mnist_pair(x, y, files[part, "images"], files[part, "labels"])
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _check_mnist_pair(images: np.ndarray, labels: np.ndarray, x_path: Path, y_path: Path) -> None:
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{x_path}: expected uint8 (n, H, W), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{y_path}: expected uint8 (n,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{x_path} holds {len(images)} images, {y_path} {len(labels)} labels")


def load_digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images), rescaled from 0..16 to uint8 0..255.

    Needs no download, only the optional extra ``pip install neuralrg[digits]``.

    >>> images, labels = load_digits_8x8()  # doctest: +SKIP
    >>> images.shape, images.dtype, int(images.max())  # doctest: +SKIP
    ((1797, 8, 8), dtype('uint8'), 255)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "load_digits_8x8 needs scikit-learn, which is not installed; "
            "install it with `pip install neuralrg[digits]` (or `pip install scikit-learn`)"
        ) from error
    digits = load_digits()
    images = np.rint(np.asarray(digits.images, dtype=np.float64) * (255.0 / 16.0))
    return images.astype(np.uint8), np.asarray(digits.target).astype(np.uint8)


def split_train_heldout(
    images: np.ndarray, labels: np.ndarray, n_heldout: int, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split into ``((train_x, train_y), (held_x, held_y))`` by a seeded random permutation.

    >>> x, y = np.arange(10).reshape(10, 1, 1), np.arange(10)
    >>> (tx, ty), (hx, hy) = split_train_heldout(x, y, n_heldout=3, seed=0)
    >>> len(ty), len(hy), sorted(np.concatenate([ty, hy]).tolist()) == list(range(10))
    (7, 3, True)
    """
    n = len(images)
    if len(labels) != n:
        raise ValueError(f"images and labels differ in length: {n} vs {len(labels)}")
    check_int("n_heldout", n_heldout, 0, n)
    order = np.random.default_rng(seed).permutation(n)
    held, train = order[:n_heldout], order[n_heldout:]
    return (images[train], labels[train]), (images[held], labels[held])


def _next_power_of_two(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def pad_to_power_of_two(images: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """Zero-pad ``(n, H, W)`` images symmetrically so H and W become powers of two.

    Works on numpy arrays and torch tensors; odd padding puts the extra row/column last.

    >>> pad_to_power_of_two(np.ones((2, 28, 28), dtype=np.uint8)).shape
    (2, 32, 32)
    >>> pad_to_power_of_two(np.ones((2, 8, 8))).shape
    (2, 8, 8)
    """
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, H, W), got {tuple(images.shape)}")
    pads = []
    for size in images.shape[1:]:
        extra = _next_power_of_two(size) - size
        pads.append((extra // 2, extra - extra // 2))
    if isinstance(images, Tensor):
        return F.pad(images, (*pads[1], *pads[0]))
    return np.pad(images, [(0, 0), *pads])


def dequantize(
    x: np.ndarray | Tensor,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Uniform dequantisation y = (x + u) / 256, u ~ U[0, 1), of 8-bit images into [0, 1).

    The result is on the device of ``x`` (and of ``generator``), in ``dtype``.

    >>> x = torch.tensor([[0, 255]], dtype=torch.uint8)
    >>> y = dequantize(x, torch.Generator().manual_seed(0))
    >>> bool((y >= 0).all() and (y < 1).all())
    True
    """
    x = torch.as_tensor(x)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"x must hold integer pixel values 0..255, got dtype {x.dtype}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > 255):
        raise ValueError(f"pixel values must lie in 0..255, got {int(x.min())}..{int(x.max())}")
    noise = torch.rand(x.shape, generator=generator, dtype=dtype, device=x.device)
    y = (x.to(dtype) + noise) / 256
    # (255 + u) / 256 can round up to exactly 1 in finite precision; keep y < 1.
    return y.clamp_max(1 - torch.finfo(dtype).eps / 2)


class LogitTransform(nn.Module):
    """z = logit(alpha + (1 - 2 alpha) y), mapping y in [0, 1)^D to the real line.

    ``forward(y) -> (z, log|dz/dy|)`` and ``inverse(z) -> (y, log|dy/dz|)``; log-dets are
    summed over all non-batch dimensions, shape ``(batch,)``. Note the direction: forward is
    data -> latent here (the preprocessing step), the reverse of a flow's generation.

    >>> transform = LogitTransform(alpha=0.05)
    >>> y = torch.rand(4, 8, 8, dtype=torch.float64)
    >>> z, log_det = transform(y)
    >>> y_back, inv_log_det = transform.inverse(z)
    >>> torch.allclose(y_back, y), torch.allclose(log_det, -inv_log_det)
    (True, True)
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must lie in [0, 0.5), got {alpha}")
        self.alpha = float(alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"

    def _log_abs_dz_dy(self, z: Tensor) -> Tensor:
        # dz/dy = (1 - 2 alpha) / (s (1 - s)) with s = sigmoid(z); -ln s = softplus(-z).
        log_derivative = math.log1p(-2 * self.alpha) + F.softplus(z) + F.softplus(-z)
        return log_derivative.reshape(z.shape[0], -1).sum(dim=1)

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        s = self.alpha + (1 - 2 * self.alpha) * y
        z = torch.log(s) - torch.log1p(-s)
        return z, self._log_abs_dz_dy(z)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        y = (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)
        return y, -self._log_abs_dz_dy(z)


def bits_per_dim(log_q_y: Tensor | float, n_dims: int) -> Tensor:
    """Bits per dimension (-ln q_y + D ln 256) / (D ln 2) of dequantised 8-bit data.

    ``log_q_y`` is ln q_y(y) of y in [0, 1)^D, including any logit log-det. A uniform model
    scores exactly 8:

    >>> bits_per_dim(torch.zeros(3), n_dims=784).tolist()
    [8.0, 8.0, 8.0]
    """
    check_int("n_dims", n_dims, 1)
    log_q_y = torch.as_tensor(log_q_y)
    if not log_q_y.is_floating_point():
        log_q_y = log_q_y.to(torch.get_default_dtype())
    # Written as 8 - ln q / (D ln 2) (algebraically equal) so that ln q = 0 gives exactly 8.
    return 8.0 - log_q_y / (int(n_dims) * math.log(2))
