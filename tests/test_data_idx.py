"""IDX reading: round trips, and every malformed file raises DatasetFormatError naming it."""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import example, given, strategies as st

from net.data import DatasetFormatError, read_idx, write_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(5,), (3, 4, 2)])
def test_round_trip(tmp_path, suffix, shape, rng):
    arr = rng.integers(0, 256, size=shape).astype(np.uint8)
    path = tmp_path / f"f-idx{suffix}"
    write_idx(path, arr)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_magic_numbers_of_labels_and_images(tmp_path):
    write_idx(tmp_path / "l", np.zeros(3, np.uint8))
    write_idx(tmp_path / "i", np.zeros((2, 2, 2), np.uint8))
    assert (tmp_path / "l").read_bytes()[:4] == bytes.fromhex("00000801")
    assert (tmp_path / "i").read_bytes()[:4] == bytes.fromhex("00000803")


def _header(dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("content,message", [
    (b"\x12\x34\x08\x01" + b"\0" * 8, "bad magic number 0x12340801"),
    (_header((3,), code=0x07) + b"abc", "unknown IDX type code 0x07"),
    (_header((4, 28, 28)) + b"\0" * 100, r"declares shape \(4, 28, 28\)|truncated payload"),
    (_header((2,)) + b"\0\0\0", "holds 3 bytes|trailing bytes"),
    (_header((2**32 - 1, 2**32 - 1, 2**32 - 1)) + b"\0" * 10, "declares shape|truncated payload"),
    (b"\0\0", "truncated header"),
    (b"", "truncated header"),
])
def test_malformed_files(tmp_path, compress, content, message):
    path = tmp_path / ("bad.gz" if compress else "bad")
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(DatasetFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_damaged_gzip_stream(tmp_path):
    data = gzip.compress(_header((1000,)) + bytes(1000))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match="cut.gz"):
        read_idx(path)
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DatasetFormatError, match="damaged gzip stream"):
        read_idx(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


@given(data=st.binary(max_size=300), compress=st.booleans())
def test_random_bytes_never_crash(tmp_path_factory, data, compress):
    path = tmp_path_factory.mktemp("idx") / "random"
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        arr = read_idx(path)
    except DatasetFormatError:
        return
    # accepted only if it really is a well-formed file
    assert arr.nbytes == len(data) - 4 - 4 * data[3]


@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), extra=st.binary(max_size=64),
       compress=st.booleans())
@example(dims=[0, 279, 12422496, 2_661_194_750], extra=b"", compress=False)  # no bytes, impossible shape
def test_huge_declared_sizes_are_not_trusted(tmp_path_factory, dims, extra, compress):
    content = _header(tuple(dims)) + extra
    path = tmp_path_factory.mktemp("idx") / "huge"
    path.write_bytes(gzip.compress(content) if compress else content)
    try:  # NumPy refuses some shapes even with zero elements, e.g. (0, 2**31, 2**31, 2**31)
        representable = np.empty(tuple(dims), dtype=np.uint8).size == len(extra)
    except (ValueError, MemoryError):
        representable = False
    if representable:
        assert read_idx(path).shape == tuple(dims)
    else:
        with pytest.raises(DatasetFormatError):
            read_idx(path)


@given(arr=st.lists(st.integers(0, 255), min_size=1, max_size=50), cut=st.integers(1, 40))
def test_truncated_files(tmp_path_factory, arr, cut):
    path = tmp_path_factory.mktemp("idx") / "t"
    write_idx(path, np.array(arr, dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: max(0, len(data) - cut)])
    with pytest.raises(DatasetFormatError):
        read_idx(path)
