"""Messages that pointed the wrong way (issue #13): each now says what is really wrong."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from semg_hht.data.labels import read_manifest
from semg_hht.data.matrices import read_matrix
from semg_hht.errors import SemgError
from semg_hht.hht.readers import read_recording
from semg_hht.hht.settings import ReaderSettings
from semg_hht.training.train import build_datamodule
from tests.helpers import TINY, compose_cfg, emg_like, recordings, run_make_hht

SPREADSHEET = {  # how Excel and colleagues save "path,movement,gender"
    "bom": "\ufeffpath,movement,gender\na.csv,full,M\n",
    "semicolons": "path;movement;gender\na.csv;full;M\n",
    "spaces": "path, movement, gender\na.csv, full, M\n",
}


@pytest.mark.parametrize("style", list(SPREADSHEET))
def test_make_hht_reads_manifests_as_spreadsheets_save_them(style, tmp_path):
    src = recordings(tmp_path / "raw", ["a.csv"])
    (src / "list.csv").write_text(SPREADSHEET[style], encoding="utf-8")
    summary = run_make_hht(src / "list.csv", tmp_path / "out")
    assert summary["written"] == 1 and [p.name for p in (tmp_path / "out").glob("*.npz")] == ["CH1_full_M_001.npz"]


def test_make_hht_names_the_file_column_instead_of_calling_it_a_recording(tmp_path):
    src = recordings(tmp_path / "raw", ["a.csv"])
    (src / "list.csv").write_text("file,movement\na.csv,full\n")
    with pytest.raises(SemgError, match=r"list\.csv: manifest has a 'file' column .* inputs\.manifest\.path_col=file"):
        run_make_hht(src / "list.csv", tmp_path / "out")


@pytest.mark.parametrize("style", ["bom", "semicolons", "spaces"])
def test_train_reads_manifests_as_spreadsheets_save_them(style, tmp_path):
    (tmp_path / "a.npz").write_bytes(b"")
    text = SPREADSHEET[style].replace("path", "file").replace("a.csv", "a.npz")
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    [rec] = read_manifest(tmp_path / "m.csv", tmp_path)
    assert rec.path == (tmp_path / "a.npz").resolve() and rec.labels == {"movement": "full", "gender": "M"}


def test_a_huge_sample_is_not_called_a_constant_channel(tmp_path, caplog):
    x = emg_like(600, 1000.0)
    x[100] = 1e300
    src = tmp_path / "raw"
    src.mkdir()
    np.savetxt(src / "a_M_full.csv", x[:, None])
    with pytest.raises(SemgError, match=r"1 of 1 recordings failed \(listed above\); none was converted"):
        run_make_hht(src, tmp_path / "out")
    errors = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "too large to compute with" in errors and "constant" not in errors


def test_fs_stored_as_a_string_is_named_as_such(tmp_path):
    np.savez(tmp_path / "r.npz", signal=emg_like(600, 1000.0), fs=np.str_("1000 Hz"))
    with pytest.raises(SemgError, match=r"'fs' must be a number \(Hz\), got str\d* '1000 Hz'"):
        read_recording(tmp_path / "r.npz", ReaderSettings())


def test_an_empty_two_channel_array_is_empty_not_two_samples(tmp_path):
    np.save(tmp_path / "r.npy", np.zeros((0, 2)))
    with pytest.raises(SemgError, match=r"signal is empty \(shape \(0, 2\)\)"):
        read_recording(tmp_path / "r.npy", ReaderSettings(fs=1000.0))


def test_a_time_column_converted_as_a_channel_is_warned(tmp_path, caplog):
    x = emg_like(300, 1000.0)
    lines = ["time,emg"] + [f"{i / 1000:.3f},{v:.5f}" for i, v in enumerate(x)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        rec = read_recording(tmp_path / "r.csv", ReaderSettings(fs=1000.0))
    assert rec.signal.shape == (300, 2)  # converted as asked, but not silently
    assert "'time' looks like time but is converted as a channel -> set reader.time_column=time" in caplog.text


def test_a_folder_or_link_loop_named_npz_is_left_out_with_a_warning(synthetic_dir, tmp_path, caplog):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    (data / "old.npz").mkdir()
    (data / "loop.npz").symlink_to(data / "loop.npz")
    cfg = compose_cfg([*TINY, f"paths.data_dir={data}", f"paths.output_dir={tmp_path / 'run'}"])
    with caplog.at_level(logging.WARNING):
        dm = build_datamodule(cfg)
        dm.setup("fit")
    assert dm.n_found == len(list(synthetic_dir.glob("*.npz")))
    assert "loop.npz: not a regular file" in caplog.text and "old.npz: not a regular file" in caplog.text


def test_predict_on_a_csv_says_it_is_not_an_npz_not_numpys_pickle_hint(tmp_path):
    (tmp_path / "x.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(
        SemgError, match=r"x\.csv: cannot read npz: the file is not an \.npz archive .*make_hht\.py"
    ) as err:
        read_matrix(tmp_path / "x.csv", 1, 32)
    assert "pickle" not in str(err.value)
