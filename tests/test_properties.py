"""Property-based: the file-name parser and the npz reader never raise anything but SemgError."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semg_hht.data.matrices import read_matrix
from semg_hht.errors import SemgError
from tests.helpers import default_scheme

SCHEME = default_scheme()
names = st.text(alphabet=st.characters(blacklist_characters="/\x00"), min_size=1, max_size=60)
tokens = st.lists(st.sampled_from(["BICEPS", "full", "half", "M", "F", "wrong", "Test", "007", "x"]), max_size=6)


@given(st.one_of(names, tokens.map("_".join).filter(bool)))
def test_any_file_name_parses_or_raises_semg_error(name):
    try:
        labels = SCHEME.labels(Path(f"{name}.npz"))
    except SemgError as err:
        assert "cannot read" in str(err)
    else:
        assert labels == {} or set(labels) == {"movement", "gender"}


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


arrays = st.one_of(
    st.tuples(st.integers(0, 3), st.integers(0, 10), st.integers(0, 10)).map(
        lambda s: np.random.default_rng(0).normal(size=s)
    ),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=64).map(np.array),
    st.just(np.zeros((8, 8), dtype=bool)),
    st.just(np.array(["a", "b"])),
)
contents = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(["hht", "x", "signal"]), arrays, max_size=2).map(_npz_bytes),
    st.dictionaries(st.just("hht"), arrays, min_size=1).map(_npz_bytes).map(lambda b: b[: len(b) // 2]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contents)
def test_any_file_content_reads_or_raises_semg_error(blob):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npz"
        path.write_bytes(blob)
        try:
            matrix = read_matrix(path, 1, 8)
        except SemgError as err:
            assert str(err).startswith(str(path))
        else:
            assert matrix.shape == (1, 8, 8) and matrix.dtype == np.float32 and np.isfinite(matrix).all()


def test_a_zip_whose_member_is_not_an_array(tmp_path):
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(SemgError, match="not an array"):
        read_matrix(path, 1, 8)
