"""make_hht end to end on small synthetic data: output contract, resume, determinism, shards, bad input."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.hht.pipeline import make_hht
from semg_hht.synth.raw import SynthConfig, generate
from tests.helpers import ROOT, hht_cfg, read_back

SMALL = SynthConfig(subjects=2, reps=2, duration_s=1.0, fs=500.0, channels=2, seed=3)
N_REC = 2 * 2 * 3


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    generate(out, SMALL)
    return out


@pytest.fixture(scope="module")
def converted(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("hht")
    summary = make_hht(hht_cfg(f"input={raw / 'manifest.csv'}", f"output={out}"))
    return out, summary


def npz_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.npz"))


def rows(d: Path) -> list[dict]:
    with open(d / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_outputs_follow_the_contract(converted):
    out, summary = converted
    assert summary["written"] == 2 * N_REC and summary["failed"] == [] and summary["skipped"] == 0
    names = npz_files(out)
    assert len(names) == 2 * N_REC
    assert all(re.fullmatch(r"(BICEPS|BRACHIORADIALIS)_(full|half|invalid)_[MF]_\d{3}\.npz", n) for n in names)
    table = rows(out)
    assert [r["file"] for r in table] == sorted([r["file"] for r in table], key=lambda f: (f[-7:], f))
    assert {"file", "subject", "movement", "gender", "source", "channel", "window"} <= set(table[0])
    assert {"fs_hz", "repetition", "fatigue", "median_freq_hz"} <= set(table[0])  # passed through
    for r in table:
        assert read_back(r["file"]) == {"gender": r["gender"], "movement": r["movement"]}
        with np.load(out / r["file"]) as z:
            hht = z["hht"]
            assert hht.dtype == np.float32 and hht.shape == (256, 256) and hht.max() == 1.0
            assert str(z["source"]) == r["source"] and str(z["channel"]) == r["channel"]
            assert str(z["subject"]) == r["subject"] and float(z["fs"]) == 500.0
            assert z["band"].tolist() == [20.0, 237.5] and str(z["normalisation"]) == "zscore/recording"
            assert float(z["t_start_s"]) == 0.0
            assert float(z["t_end_s"]) == pytest.approx(float(r["duration_s"]))
            assert z["n_imfs"][0] >= 5 and "EMD-signal" in str(z["versions"])
            assert '"movement": "' + r["movement"] in str(z["labels"])


def test_rerun_skips_finished_and_resumes_missing(raw, converted, tmp_path):
    out, _ = converted
    work = tmp_path / "hht"
    work.mkdir()
    for name in npz_files(out):
        (work / name).write_bytes((out / name).read_bytes())
    lost = npz_files(work)[::5]
    for name in lost:  # as if the run had been killed before these were written
        (work / name).unlink()
    before = {p.name: p.stat().st_mtime_ns for p in work.glob("*.npz")}
    summary = make_hht(hht_cfg(f"input={raw / 'manifest.csv'}", f"output={work}"))
    assert summary["written"] == len(lost) and summary["skipped"] == 2 * N_REC - len(lost)
    assert all((work / n).stat().st_mtime_ns == t for n, t in before.items())
    assert npz_files(work) == npz_files(out)
    for name in lost:
        assert np.array_equal(np.load(work / name)["hht"], np.load(out / name)["hht"])
    again = make_hht(hht_cfg(f"input={raw / 'manifest.csv'}", f"output={work}", "overwrite=true"))
    assert again["written"] == 2 * N_REC and again["skipped"] == 0


def test_parallel_run_is_identical_to_serial(raw, converted, tmp_path):
    out, _ = converted
    summary = make_hht(hht_cfg(f"input={raw / 'manifest.csv'}", f"output={tmp_path}", "workers=2"))
    assert summary["written"] == 2 * N_REC
    assert npz_files(tmp_path) == npz_files(out)
    for name in npz_files(out):
        assert np.array_equal(np.load(tmp_path / name)["hht"], np.load(out / name)["hht"]), name
    assert (tmp_path / "manifest.csv").read_text() == (out / "manifest.csv").read_text()


def test_shards_cover_every_recording_once(raw, converted, tmp_path):
    out, _ = converted
    seen = []
    for shard in range(3):
        before = set(npz_files(tmp_path))
        summary = make_hht(
            hht_cfg(f"input={raw / 'manifest.csv'}", f"output={tmp_path}", f"shard={shard}", "num_shards=3")
        )
        new = set(npz_files(tmp_path)) - before
        assert summary["written"] == len(new) > 0
        seen += sorted(new)
        assert (summary["manifest"] is None) == (shard < 2)
    assert sorted(seen) == npz_files(out)  # disjoint and complete
    assert (tmp_path / "manifest.csv").read_text() == (out / "manifest.csv").read_text()


def test_stacked_channels_and_windows(raw, tmp_path):
    cfg = hht_cfg(
        f"input={raw / 'manifest.csv'}",
        f"output={tmp_path}",
        "layout.stack_channels=true",
        "window.length_s=0.5",
        "window.hop_s=0.25",
        "spectrum.size=64",
    )
    summary = make_hht(cfg)
    durations = [float(r["duration_s"]) for r in rows(raw)]  # truncated 'invalid' ones are shorter
    assert summary["written"] == sum(int((d - 0.5) / 0.25 + 1e-9) + 1 for d in durations) > N_REC
    assert all(re.fullmatch(r"EMG_(full|half|invalid)_[MF]_\d{3}_w\d{2}\.npz", n) for n in npz_files(tmp_path))
    with np.load(tmp_path / "EMG_full_F_007_w02.npz") as z:  # a full-length (1 s) recording
        assert z["hht"].shape == (2, 64, 64) and z["channels"].tolist() == ["BICEPS", "BRACHIORADIALIS"]
        assert (float(z["t_start_s"]), float(z["t_end_s"])) == (0.5, 1.0)
    assert [r["window"] for r in rows(tmp_path)][:3] == ["0", "1", "2"]


def test_folder_input_labels_from_names_and_unlabelled(raw, tmp_path):
    out = tmp_path / "a"
    make_hht(hht_cfg(f"input={raw}", f"output={out}", "reader.fs=500", r"inputs.subject_regex='^(S\d+)/'"))
    table = rows(out)
    assert len(table) == 2 * N_REC and {r["subject"] for r in table} == {"S01", "S02"}
    assert table[0]["file"] == "BICEPS_full_F_001.npz" or table[0]["movement"] in ("full", "half", "invalid")
    unl = tmp_path / "unlabelled"
    unl.mkdir()
    np.savetxt(unl / "session1.csv", np.random.default_rng(0).standard_normal((600, 1)))
    make_hht(hht_cfg(f"input={unl}", f"output={tmp_path / 'b'}", "reader.fs=1000"))
    assert npz_files(tmp_path / "b") == ["Test_CH1_001.npz"]


def write_sig(path: Path, x: np.ndarray) -> str:
    np.savetxt(path, x, delimiter=",")
    return path.name


def test_bad_recordings_fail_alone_with_clear_errors(tmp_path, caplog):
    rng = np.random.default_rng(1)
    good = rng.standard_normal((800, 1))
    files = {
        write_sig(tmp_path / "good.csv", good): "1000",
        write_sig(tmp_path / "nan.csv", np.where(np.arange(800)[:, None] == 9, np.nan, good)): "1000",
        write_sig(tmp_path / "zeros.csv", np.zeros((800, 1))): "1000",
        write_sig(tmp_path / "short.csv", good[:20]): "1000",
        write_sig(tmp_path / "lowfs.csv", good): "30",
        "missing.csv": "1000",
        write_sig(tmp_path / "nofs.csv", good): "",
    }
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    files["ragged.csv"] = "1000"
    with open(tmp_path / "list.csv", "w") as f:
        f.write("path,fs_hz,movement,gender\n")
        f.writelines(f"{p},{fs},full,M\n" for p, fs in files.items())
    out = tmp_path / "out"
    with pytest.raises(SemgError, match=r"7 of 8 recordings failed"):
        make_hht(hht_cfg(f"input={tmp_path / 'list.csv'}", f"output={out}"))
    assert npz_files(out) == ["CH1_full_M_001.npz"]
    assert [r["file"] for r in rows(out)] == ["CH1_full_M_001.npz"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    expected = {
        "nan.csv": "NaN/inf samples",
        "zeros.csv": "constant",
        "short.csv": "too short for EMD",
        "lowfs.csv": "too low for the 20-450 Hz band",
        "missing.csv": "not found",
        "nofs.csv": "sampling rate unknown",
        "ragged.csv": "line 2 has 1 columns",
    }
    for name, what in expected.items():
        assert any(name in e and what in e for e in errors), (name, errors)
    assert not list(out.glob(".*"))  # no temp files left behind


def test_existing_outputs_from_other_settings_are_not_reused(raw, converted, tmp_path):
    out, _ = converted
    for name in npz_files(out)[:2]:
        (tmp_path / name).write_bytes((out / name).read_bytes())
    with pytest.raises(SemgError, match="holds matrices of another conversion"):  # before any work
        make_hht(hht_cfg(f"input={raw / 'manifest.csv'}", f"output={tmp_path}", "filter.bandpass=[30,200]"))
    assert len(npz_files(tmp_path)) == 2
    first = npz_files(out)[0]
    assert np.array_equal(np.load(tmp_path / first)["hht"], np.load(out / first)["hht"])  # untouched


def test_a_changed_out_of_range_is_refused_like_any_spectrum_change(raw, converted, tmp_path):
    out, _ = converted  # the full 0..fs/2 axis, out_of_range null: clipped, as the seed
    name = npz_files(out)[0]
    for value, folder in (("drop", tmp_path / "drop"), ("clip", tmp_path / "clip")):
        folder.mkdir()
        (folder / name).write_bytes((out / name).read_bytes())
        cfg = hht_cfg(f"input={raw / 'manifest.csv'}", f"output={folder}", f"spectrum.out_of_range={value}")
        if value == "drop":  # other matrices than the folder holds: refused, the file untouched
            with pytest.raises(SemgError, match="holds matrices of another conversion"):
                make_hht(cfg)
            assert np.array_equal(np.load(folder / name)["hht"], np.load(out / name)["hht"])
        else:  # naming what null already does changes nothing: the matrix is reused
            assert make_hht(cfg)["skipped"] == 1


def test_refuses_to_write_into_the_input_folder(raw):
    with pytest.raises(SemgError, match=r"input manifest would be replaced by the output manifest"):
        make_hht(hht_cfg(f"input={raw / 'manifest.csv'}", f"output={raw}"))
    assert not list(raw.glob("*.npz"))


def test_every_config_key_is_read_and_typos_are_refused(tmp_path):
    from semg_hht.hht.settings import settings_from_cfg

    s = settings_from_cfg(hht_cfg("input=a", "output=b"))  # consumes every key of conf/hht.yaml
    assert s.spectrum.size == 256 and s.emd.max_imf == 10 and s.filter.bandpass == (20.0, 450.0)
    with pytest.raises(SemgError, match=r"unknown config key\(s\): filter.bogus"):
        settings_from_cfg(hht_cfg("input=a", "output=b", "+filter.bogus=1"))
    with pytest.raises(SemgError, match="input"):
        settings_from_cfg(hht_cfg("output=b"))
    with pytest.raises(SemgError, match=r"normalise\.method"):
        settings_from_cfg(hht_cfg("input=a", "output=b", "normalise.method=zscor"))


def test_cli_prints_one_line_error_and_exits_nonzero(tmp_path):
    np.savetxt(tmp_path / "ok_M_full.csv", np.random.default_rng(0).standard_normal((600, 1)))
    (tmp_path / "bad_M_half.csv").write_text("1\nx\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "make_hht.py"),
            f"input={tmp_path}",
            f"output={tmp_path / 'out'}",
            "reader.fs=1000",
            "progress=false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 recordings failed") and "Traceback" not in proc.stderr
    assert "bad_M_half.csv: line 2 is not numeric" in proc.stdout + proc.stderr
    assert npz_files(tmp_path / "out") == ["CH1_full_M_002.npz"]
    assert list((tmp_path / "logs" / "hht" / "runs").iterdir())  # Hydra run dir


@pytest.mark.slow
def test_ctrl_c_loses_nothing_and_rerun_finishes(tmp_path):
    """SIGINT to the whole process group mid-run (what Ctrl-C does), then the same command again."""
    import os
    import signal
    import time

    generate(tmp_path / "raw", SynthConfig(subjects=4, reps=3, duration_s=3.0, fs=1000.0, channels=2))
    cmd = [sys.executable, str(ROOT / "make_hht.py"), f"input={tmp_path / 'raw' / 'manifest.csv'}"]
    cmd += [f"output={tmp_path / 'out'}", "workers=2", "progress=false"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while len(list((tmp_path / "out").glob("*.npz"))) < 6 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    log = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, log
    assert "rerun the same command" in log and "Traceback" not in log
    time.sleep(1)  # workers finishing their current recording may still write (atomically)
    kept = npz_files(tmp_path / "out")
    assert 6 <= len(kept) < 72
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files
    for name in kept:
        assert np.load(tmp_path / "out" / name)["hht"].shape == (256, 256)
    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{72 - len(kept)} written, {len(kept)} already done" in rerun.stdout + rerun.stderr
    assert len(npz_files(tmp_path / "out")) == 72 and len(rows(tmp_path / "out")) == 72


@pytest.mark.slow
def test_hydra_multirun_over_shards(raw, converted, tmp_path):
    out, _ = converted
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "make_hht.py"),
            "-m",
            f"input={raw / 'manifest.csv'}",
            f"output={tmp_path / 'out'}",
            "num_shards=3",
            "shard=range(3)",
            "workers=1",
            "progress=false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert npz_files(tmp_path / "out") == npz_files(out)
    assert (tmp_path / "out" / "manifest.csv").read_text() == (out / "manifest.csv").read_text()
    assert len([p for p in (tmp_path / "logs" / "hht" / "multiruns").glob("*/*") if p.is_dir()]) == 3


def test_band_axis_and_channel_scales_keep_the_ratio_between_muscles(raw, tmp_path):
    """A recording whose second muscle is the first at a tenth of the amplitude: make_hht's per-channel
    normalisation makes their matrices identical; the stored scales bring the 10:1 ratio back."""
    src = tmp_path / "raw"
    (src / "S01").mkdir(parents=True)
    first = rows(raw)[0]
    x = np.loadtxt(raw / first["path"], delimiter=",", skiprows=1)
    x[:, 1] = 0.1 * x[:, 0]
    np.savetxt(src / first["path"], x, delimiter=",", header="BICEPS,BRACHIORADIALIS", comments="")
    with open(src / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(first))
        w.writeheader()
        w.writerow(first)
    out = tmp_path / "hht"
    overrides = [f"input={src / 'manifest.csv'}", "layout.stack_channels=true", "spectrum.size=32"]
    assert make_hht(hht_cfg(*overrides, f"output={out}", "spectrum.freq_range=band"))["written"] == 1
    path = next(out.glob("*.npz"))
    with np.load(path) as z:
        assert z["freq_range"].tolist() == z["band"].tolist() == [20.0, 237.5]  # 500 Hz: clipped below Nyquist
        assert str(z["freq_scale"]) == "linear"
    log_out = tmp_path / "log"
    log_axis = ["spectrum.freq_range=band", "spectrum.freq_scale=log"]
    assert make_hht(hht_cfg(*overrides, f"output={log_out}", *log_axis))["written"] == 1
    with np.load(next(log_out.glob("*.npz"))) as z:
        assert str(z["freq_scale"]) == "log" and z["freq_range"].tolist() == [20.0, 237.5]
        np.testing.assert_allclose(z["hht"][0], z["hht"][1], atol=1e-6)
    from semg_hht.data.matrices import read_matrix

    kept = read_matrix(path, 2, 32, gains=True)
    assert kept[1].max() / kept[0].max() == pytest.approx(0.1, rel=1e-6)
    with pytest.raises(SemgError, match="freq_range=band needs a band-pass"):
        make_hht(
            hht_cfg(
                f"input={src / 'manifest.csv'}",
                f"output={tmp_path / 'x'}",
                "spectrum.freq_range=band",
                "filter.bandpass=null",
            )
        )


def test_make_hht_does_not_import_lightning_or_torch():
    """make_hht and each of its worker processes import the conversion modules; Lightning and torch
    would add seconds to every process and are not needed to convert."""
    code = "import sys, semg_hht.conversion; print(sorted({'lightning', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
