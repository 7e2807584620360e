"""Readers: every supported format, sniffed delimiters, and one clear error per kind of bad file."""

import numpy as np
import pytest
from scipy.io import savemat

from semg_hht.errors import SemgError
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import ReaderSettings

RS = ReaderSettings()
SIG = np.column_stack([np.sin(np.arange(200) / 3.0), np.cos(np.arange(200) / 5.0)])


def test_csv_with_header_names_channels(tmp_path):
    p = tmp_path / "a.csv"
    np.savetxt(p, SIG, delimiter=",", header="BICEPS,TRICEPS", comments="")
    rec = read_recording(p, RS, fs_hint=1000)
    assert rec.channel_names == ["BICEPS", "TRICEPS"] and rec.fs == 1000
    np.testing.assert_allclose(rec.signal, SIG, rtol=1e-15)


@pytest.mark.parametrize(("sep", "setting"), [(" ", "auto"), ("\t", "auto"), (";", "auto"), (";", "semicolon")])
def test_text_delimiters(tmp_path, sep, setting):
    p = tmp_path / "a.txt"
    p.write_text("\n".join(sep.join(str(int(v)) for v in row) for row in (SIG * 1000)) + "\n")
    rec = read_recording(p, ReaderSettings(delimiter=setting), fs_hint=500)
    assert rec.signal.shape == (200, 2) and rec.channel_names == ["CH1", "CH2"]
    assert rec.signal[5, 0] == int(SIG[5, 0] * 1000)


def test_time_column_is_dropped_and_gives_fs(tmp_path):
    p = tmp_path / "a.csv"
    t = np.arange(200) / 250.0
    np.savetxt(p, np.column_stack([t, SIG]), delimiter=",", header="time,A,B", comments="")
    rec = read_recording(p, ReaderSettings(time_column="time"))
    assert rec.fs == pytest.approx(250.0) and rec.channel_names == ["A", "B"] and rec.signal.shape == (200, 2)


def test_npy_channels_first_is_transposed_and_channels_selected(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, SIG.T)
    rec = read_recording(p, ReaderSettings(fs=1000.0, channels=(1,), channel_names=("X", "Y")))
    assert rec.channel_names == ["Y"]
    np.testing.assert_array_equal(rec.signal[:, 0], SIG[:, 1])


def test_npz_signal_fs_and_names(tmp_path):
    p = tmp_path / "a.npz"
    np.savez(p, signal=SIG, fs=np.float64(2000), channels=np.array(["L", "R"]))
    rec = read_recording(p, RS)
    assert rec.fs == 2000 and rec.channel_names == ["L", "R"]
    assert read_recording(p, RS, fs_hint=1000).fs == 1000  # the manifest wins


def test_mat_with_configured_keys(tmp_path):
    p = tmp_path / "a.mat"
    savemat(p, {"emg": SIG, "rate": 1500.0})
    rec = read_recording(p, ReaderSettings(mat_key="emg", mat_fs_key="rate"))
    assert rec.fs == 1500 and rec.signal.shape == (200, 2)
    with pytest.raises(SemgError, match=r"a\.mat: no variable 'signal' \(variables: emg, rate\)"):
        read_recording(p, RS)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("ragged.csv", "1,2\n3,4\n5\n", "line 3 has 1 columns, expected 2"),
        ("text.csv", "1,2\n3,abc\n", "line 2 is not numeric"),
        ("empty.csv", "\n\n", "no samples"),
        ("header_only.csv", "a,b\n", "header but no samples"),
        ("nan.csv", "1,2\n3,nan\n4,5\n", r"1 NaN/inf samples \(first: sample 1, channel CH2\)"),
        ("binary.txt", b"\xff\xfe\x00\x01garbage", "cannot read .txt file"),
        ("odd.xyz", "1\n2\n", "unsupported file type"),
    ],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SemgError, match=match) as err:
        read_recording(p, RS, fs_hint=1000)
    assert str(err.value).startswith(str(p)) and " -> " in str(err.value)


def test_missing_fs_and_missing_file(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, SIG)
    with pytest.raises(SemgError, match=r"sampling rate unknown.*reader\.fs"):
        read_recording(p, RS)
    with pytest.raises(SemgError, match="not found"):
        read_recording(tmp_path / "nope.csv", RS, fs_hint=1000)
    with pytest.raises(SemgError, match="not a positive number"):
        read_recording(p, RS, fs_hint=-5)


def test_npz_without_signal_key_lists_keys(tmp_path):
    p = tmp_path / "a.npz"
    np.savez(p, data=SIG)
    with pytest.raises(SemgError, match=r"no 'signal' array \(keys: data\).*npz_signal_key"):
        read_recording(p, RS, fs_hint=1000)


def test_mat_v73_hdf5_transposed_arrays_vectors_and_text(tmp_path):
    import h5py

    from semg_hht.synth.sessions import write_session

    emg = np.random.default_rng(0).standard_normal((300, 3))
    labels = np.repeat([0, 2, 0], 100).astype(np.uint8)[:, None]
    path = tmp_path / "S7_E1_A1.mat"
    write_session(path, {"emg": emg, "restimulus": labels}, "mat73")
    with h5py.File(path, "a") as f:  # MATLAB writes text as UTF-16 code units, one per row
        f.create_dataset("subject", data=np.array([[ord(c)] for c in "S07"], dtype=np.uint16))
        f["subject"].attrs["MATLAB_class"] = np.bytes_("char")
    assert path.read_bytes()[:10] == b"MATLAB 7.3"
    rs = ReaderSettings(mat_key="emg", fs=200.0)
    rec = read_recording(path, rs, want=("restimulus",), optional=("subject", "absent"))
    assert rec.signal.shape == (300, 3) and np.allclose(rec.signal, emg)
    assert np.array_equal(np.ravel(rec.variables["restimulus"]), labels.ravel())
    assert str(rec.variables["subject"]) == "S07" and "absent" not in rec.variables
    with pytest.raises(SemgError, match=r"no variable 'rerepetition' \(variables: emg, restimulus, subject\)"):
        read_recording(path, rs, want=("rerepetition",))
