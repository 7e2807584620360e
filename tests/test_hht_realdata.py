"""Real recordings: ../shared/data/muscletracker through its manifest (skipped when absent)."""

import csv

import numpy as np
import pytest

from semg_hht.hht.pipeline import make_hht
from tests.helpers import SHARED, hht_cfg

MT = SHARED / "data" / "muscletracker"
pytestmark = pytest.mark.skipif(not (MT / "manifest.csv").exists(), reason="../shared/data/muscletracker absent")


def subset_manifest(tmp_path, keep):
    """The real manifest's rows for which keep(row) is true, with absolute paths."""
    with open(MT / "manifest.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if keep(r)]
        fields = reader.fieldnames
    for r in rows:
        r["path"] = str(MT / r["path"])
    path = tmp_path / "subset.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return path, rows


def test_both_devices_convert_with_their_own_fs(tmp_path):
    manifest, rows = subset_manifest(
        tmp_path, lambda r: r["repetition"] == "1" and r["movement"] == "m2" and r["subject"].endswith("-01")
    )
    assert {r["device"] for r in rows} == {"biopac", "miotracker"}
    out = tmp_path / "hht"
    summary = make_hht(hht_cfg(f"input={manifest}", f"output={out}", "filter.notch_hz=60", "filter.notch_harmonics=3"))
    assert summary["written"] == 2 * len(rows) and not summary["failed"]
    with open(out / "manifest.csv", newline="") as f:
        table = list(csv.DictReader(f))
    for r in table:
        with np.load(out / r["file"]) as z:
            assert z["hht"].shape == (256, 256) and z["hht"].dtype == np.float32
            fs = 1000.0 if r["device"] == "biopac" else 500.0
            assert float(z["fs"]) == fs and float(r["fs_hz"]) == fs
            assert z["band"].tolist() == ([20.0, 450.0] if fs == 1000 else [20.0, 237.5])
            # volts (biopac) and ADC counts (miotracker) both end up with a full set of IMFs
            assert z["n_imfs"][0] >= 8, (r["file"], z["n_imfs"])
        assert r["movement"] == "m2" and r["channel"] in ("CH1", "CH2")
        gender = r["gender"] or "U"
        assert r["file"] == f"{r['channel']}_m2_{gender}_{int(r['recording']):03d}.npz"


@pytest.mark.slow
def test_whole_dataset_through_its_manifest(tmp_path):
    out = tmp_path / "hht"
    summary = make_hht(hht_cfg(f"input={MT / 'manifest.csv'}", f"output={out}", "workers=0", "filter.notch_hz=60"))
    assert not summary["failed"] and summary["written"] == 2 * summary["recordings_total"]
    with open(out / "manifest.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert {r["movement"] for r in table} == {"m1", "m2", "m3", "m4", "m5"}
    assert {r["gender"] for r in table if r["device"] == "miotracker"} == {"M", "F"}
