"""IDX files (the format of the MNIST distribution): read and write, plain or gzipped.

An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions, each dimension as a
32-bit integer) followed by the array in row-major order. Gzip streams are recognised by their magic bytes.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_file

__all__ = ["DatasetError", "IDXFormatError", "parse_idx", "read_idx", "read_idx_bytes", "write_idx"]

# IDX type codes <-> big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


class DatasetError(Exception):
    """Base class for errors raised while loading a dataset."""


class IDXFormatError(DatasetError, ValueError):
    """A file is not a valid IDX file (bad magic number, wrong size, broken gzip stream)."""



def read_idx(path) -> np.ndarray:
    """Read an IDX file (the format of the MNIST files) into an array.

    Parameters
    ----------
    path : str or os.PathLike
        The file. It is decompressed with gzip if its name ends with ``.gz`` or its content starts
        with the gzip magic bytes.

    Returns
    -------
    numpy.ndarray
        Array of the shape declared in the header, e.g. ``(10000, 28, 28)`` for MNIST images or
        ``(10000,)`` for labels, in native byte order with the declared type: uint8, int8, int16,
        int32, float32 or float64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IDXFormatError
        If the file is not valid IDX: broken gzip stream, header too short, magic number not
        ``0x0000`` + type code + ndim, unknown type code, or a data section that is shorter or
        longer than the dimensions say.
    """
    path = Path(path)
    return parse_idx(read_idx_bytes(path), path)


def read_idx_bytes(path) -> bytes:
    """The bytes of an IDX file as IDX (decompressed if gzipped: by name ``.gz`` or by the gzip magic bytes).

    These are the bytes a published checksum of the uncompressed file refers to, so a copy re-compressed with
    other settings has the same ones. Raises IDXFormatError for a broken gzip stream.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if path.name.endswith(".gz") or raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXFormatError(
                f"{path}: cannot decompress the gzip stream ({exc}); the file is probably truncated "
                "or corrupted: replace it with a fresh copy"
            ) from exc
    return raw


def parse_idx(raw: bytes, path) -> np.ndarray:
    """The array held by the (uncompressed) IDX bytes ``raw``; ``path`` names the file in errors."""
    if len(raw) < 4:
        raise IDXFormatError(
            f"{path}: only {len(raw)} bytes, too short for the 4-byte IDX magic number; "
            "the file is empty or truncated: replace it with a fresh copy"
        )
    zero, code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00":
        raise IDXFormatError(
            f"{path}: not an IDX file: the magic number must start with two zero bytes, got "
            f"0x{raw[:4].hex()}; check that this is an (optionally gzipped) IDX file"
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise IDXFormatError(
            f"{path}: unknown IDX data type code 0x{code:02X} in magic number 0x{raw[:4].hex()}; "
            f"valid codes are {known}"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise IDXFormatError(
            f"{path}: header declares {ndim} dimensions ({header_size} header bytes) but the file "
            f"has only {len(raw)} bytes; the file is truncated: replace it with a fresh copy"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in shape):
        raise IDXFormatError(f"{path}: header declares negative dimensions {shape}; the file is corrupted")

    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        what = "truncated" if actual < expected else "longer than declared"
        raise IDXFormatError(
            f"{path}: data section is {what}: header declares shape {shape} of {dtype.name} "
            f"({expected} bytes) but {actual} bytes follow the {header_size}-byte header; "
            "replace the file with a fresh copy"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def write_idx(path, array) -> None:
    """Write an array as an IDX file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination. The file is gzip-compressed if the name ends with ``.gz``.
    array : array_like
        Data of dtype uint8, int8, int16, int32, float32 or float64 and any shape with at most 255
        dimensions, each smaller than 2**31.

    Raises
    ------
    ValueError
        If the dtype or shape cannot be stored in IDX.
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        names = ", ".join(dt.name for dt in _IDX_CODES)
        raise ValueError(
            f"write_idx: IDX cannot store dtype {array.dtype}; supported dtypes are {names}: "
            f"convert first, e.g. array.astype(np.uint8) or array.astype(np.int32)"
        )
    if array.ndim > 255:
        raise ValueError(f"write_idx: IDX stores at most 255 dimensions, the array has {array.ndim}")
    if any(d >= 2**31 for d in array.shape):
        raise ValueError(f"write_idx: IDX dimensions must be < 2**31, got shape {array.shape}")

    code = _IDX_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with atomic_file(path) as f:                    # complete or not there
        f.write(payload)
