"""The npz reader refuses bad matrices with a one-line reason; loading fills one preallocated array."""

import numpy as np
import pytest
import torch

from semg_hht.data.matrices import dataset_reference, load_matrices, read_matrix, scale_, to_reference
from semg_hht.errors import SemgError


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_reads_hht_key_else_first_array(tmp_path):
    m = np.random.default_rng(0).random((8, 8))
    assert read_matrix(_npz(tmp_path / "a.npz", other=np.zeros(3), hht=m), 1, 8).shape == (1, 8, 8)
    np.testing.assert_allclose(read_matrix(_npz(tmp_path / "b.npz", first=m), 1, 8)[0], m.astype(np.float32))


def test_multichannel_matrices(tmp_path):
    m = np.random.default_rng(0).random((2, 8, 8))
    assert read_matrix(_npz(tmp_path / "a.npz", hht=m), 2, 8).shape == (2, 8, 8)
    with pytest.raises(SemgError, match=r"shape \(2, 8, 8\), expected \(8, 8\)"):
        read_matrix(tmp_path / "a.npz", 1, 8)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"not a zip at all"), "cannot read npz"),
        (
            lambda p: p.write_bytes(_npz(p.with_suffix(".tmp.npz"), hht=np.ones((8, 8))).read_bytes()[:60]),
            "cannot read",
        ),
        (lambda p: _npz(p, hht=np.random.rand(8, 9)), r"shape \(8, 9\)"),
        (lambda p: _npz(p, hht=np.full((8, 8), np.nan)), "NaN or Inf"),
        (lambda p: _npz(p, hht=np.where(np.eye(8) > 0, np.inf, 1.0)), "NaN or Inf"),
        (lambda p: _npz(p, hht=np.zeros((8, 8))), "constant"),
        (lambda p: _npz(p, hht=np.array([["a"] * 8] * 8)), "dtype"),
        (lambda p: np.savez(p), "no arrays"),
    ],
    ids=["garbage", "truncated", "shape", "nan", "inf", "all-zero", "strings", "empty"],
)
def test_bad_matrices_name_the_file(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(SemgError, match=message) as err:
        read_matrix(path, 1, 8)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_pickled_object_arrays_are_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("unpickled a data file",))

    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(f, hht=np.array([Boom()], dtype=object))
    assert b"pytest" in path.read_bytes()  # the payload is really in there
    with pytest.raises(SemgError, match="cannot read npz"):
        read_matrix(path, 1, 8)


def test_minmax_per_sample_and_channel():
    x = np.stack([np.arange(16.0).reshape(1, 4, 4), 5 + 2 * np.arange(16.0).reshape(1, 4, 4)]).astype(np.float32)
    scale_(x, "minmax")
    assert np.allclose(x.min(axis=(-2, -1)), 0) and np.allclose(x.max(axis=(-2, -1)), 1)
    np.testing.assert_allclose(x[0], x[1])  # the same shape of values, whatever the scale


def test_parallel_load_fills_rows_in_order_and_reports_bad_rows(tmp_path):
    rng = np.random.default_rng(1)
    mats = [rng.random((8, 8)) * (i + 1) for i in range(5)]
    paths = [_npz(tmp_path / f"{i}.npz", hht=m) for i, m in enumerate(mats)]
    (tmp_path / "2.npz").write_bytes(b"broken")
    x, errors = load_matrices(paths, 1, 8, "minmax", workers=3)
    assert x.shape == (5, 1, 8, 8) and x.dtype == np.float32
    assert list(errors) == [2] and "2.npz" in str(errors[2])
    for i in (0, 1, 3, 4):
        expected = (mats[i] - mats[i].min()) / (mats[i].max() - mats[i].min())
        np.testing.assert_allclose(x[i, 0], expected, rtol=1e-6)


def _with_channel_scales(tmp_path):
    """A 2-channel matrix as make_hht writes it (each channel peaks at 1), channel gains 4 and 2."""
    m = np.random.default_rng(1).random((2, 8, 8)) + 0.1
    m /= m.max(axis=(1, 2), keepdims=True)
    path = _npz(tmp_path / "a.npz", hht=m, norm_scale=np.array([4.0, 1.0]), spectrum_peak=np.array([1.0, 2.0]))
    return path, m


def test_recording_normalisation_restores_the_ratio_between_channels(tmp_path):
    path, m = _with_channel_scales(tmp_path)
    x, errors = load_matrices([path], 2, 8, "recording", workers=1)
    assert errors == {}
    assert x[0, 0].max() == pytest.approx(1.0) and x[0, 1].max() == pytest.approx(0.5)  # gains 4 : 2
    np.testing.assert_allclose(x[0, 1] / x[0, 1].max(), m[1], rtol=1e-6)
    minmax, _ = load_matrices([path], 2, 8, "minmax", workers=1)
    assert minmax[0, 1].max() == pytest.approx(1.0)  # the seed's normalisation drops the ratio


def test_recording_normalisation_names_matrices_without_channel_scales(tmp_path):
    old = _npz(tmp_path / "old.npz", hht=np.random.default_rng(0).random((2, 8, 8)))
    _, errors = load_matrices([old], 2, 8, "recording", workers=1)
    assert "spectrum_peak" in str(errors[0]) and "overwrite=true" in str(errors[0]) and "old.npz" in str(errors[0])
    bad = _npz(tmp_path / "bad.npz", hht=np.ones((2, 8, 8)) * [[[1]], [[2]]], norm_scale=[1.0], spectrum_peak=[1.0])
    with pytest.raises(SemgError, match="do not fit 2 channel"):
        read_matrix(bad, 2, 8, gains="relative")


def test_dataset_scaling_reads_the_recordings_units(tmp_path):
    path, _ = _with_channel_scales(tmp_path)
    units, errors = load_matrices([path], 2, 8, "dataset", workers=1)
    assert errors == {}
    assert units[0, 0].max() == pytest.approx(4.0) and units[0, 1].max() == pytest.approx(2.0)
    assert dataset_reference(np.stack([units[0] * k for k in (1, 2, 10)])) == pytest.approx(8.0)  # the median peak
    assert torch.allclose(to_reference(torch.ones(2), "dataset", 4.0), torch.full((2,), 0.25))
    assert torch.equal(to_reference(torch.ones(2), "recording", None), torch.ones(2))  # other scalings: untouched
    with pytest.raises(SemgError, match="needs a positive data.scale_reference"):
        to_reference(torch.ones(2), "dataset", None)


def test_a_spurious_parse_error_of_another_thread_is_read_again(tmp_path, monkeypatch):
    """CPython 3.11: np.load's header parse in one thread can raise "AST constructor recursion depth
    mismatch" because of another thread's (seen in CI while load_matrices read in threads). The read is
    repeated; any other SystemError is not hidden."""
    import ast

    from semg_hht.io import save_npz

    path = tmp_path / "m.npz"
    save_npz(path, hht=np.random.default_rng(0).random((8, 8), dtype=np.float32))
    real, calls = ast.literal_eval, []

    def racy(source):
        calls.append(source)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=36, after=33)")
        return real(source)

    monkeypatch.setattr(ast, "literal_eval", racy)
    assert read_matrix(path, 1, 8).shape == (1, 8, 8) and len(calls) == 2
    monkeypatch.setattr(ast, "literal_eval", lambda source: (_ for _ in ()).throw(SystemError("other")))
    with pytest.raises(SystemError, match="other"):
        read_matrix(path, 1, 8)
