"""Atomic writes: the target is whole or untouched, never half-written; no silent overwrite."""

import json
import os
import re
import stat

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.io import atomic_open, refuse_overwrite, save_npz, write_json


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"acc": 0.5})
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write('{"acc": 0.9')  # half a document
        raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"acc": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_save_npz_keeps_exact_name_and_content(tmp_path):
    path = save_npz(tmp_path / "a.npz", hht=np.eye(3, dtype=np.float32))
    assert path.name == "a.npz"
    np.testing.assert_array_equal(np.load(path)["hht"], np.eye(3))


def test_a_temp_file_names_its_writer_and_is_never_read_as_a_matrix(tmp_path):
    """The writer's PID in the name tells a killed writer's leftover from a live one's (run_folder removes
    the first); ending in .tmp, a whole matrix still being renamed is no *.npz to the data module."""
    from semg_hht.data.matrices import npz_files

    save_npz(tmp_path / "a.npz", hht=np.eye(3, dtype=np.float32))
    with atomic_open(tmp_path / "b.npz", "wb") as f:
        np.savez_compressed(f, hht=np.eye(3, dtype=np.float32))
        f.flush()
        (temp,) = [p.name for p in tmp_path.iterdir() if p.name != "a.npz"]
        assert re.fullmatch(rf"\.b\.npz\.semg-{os.getpid()}-[0-9a-f]{{8}}-[a-z0-9_]+\.tmp", temp)
        assert npz_files(tmp_path) == [tmp_path / "a.npz"]


def test_refuse_overwrite_names_file_and_fix(tmp_path):
    existing = tmp_path / "out.csv"
    existing.write_text("keep me")
    with pytest.raises(SemgError, match=r"out\.csv.*overwrite=true"):
        refuse_overwrite(existing, overwrite=False)
    refuse_overwrite(existing, overwrite=True)
    refuse_overwrite(tmp_path / "new.csv", overwrite=False)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask_like_a_plain_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == mode
