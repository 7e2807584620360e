"""make_hht on whole NinaPro-style sessions: segments found = segments written, rest, marker mode,
v7.3, skipped segments, bad sessions, and subject-disjoint training on the result."""

from __future__ import annotations

import csv
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.hht.convert import convert_recording, versions
from semg_hht.hht.inputs import discover
from semg_hht.hht.manifest import _recording_key
from semg_hht.hht.pipeline import make_hht
from semg_hht.hht.segments import find_segments
from semg_hht.hht.settings import SegmentSettings, settings_from_cfg
from semg_hht.synth.sessions import MOVEMENTS, SessionConfig, generate_sessions, session
from tests.helpers import hht_cfg

# Short sessions at 200 Hz (NinaPro DB5's rate): 2 movements x 2 repetitions each.
SMALL = SessionConfig(subjects=2, movements=2, reps=2, channels=4, fs=200.0, move_s=1.5, rest_s=1.0)
FAST = ["spectrum.size=16", "emd.max_imf=4"]


def rows(d: Path) -> list[dict]:
    with open(d / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def variables_of(cfg: SessionConfig, subject: int = 1) -> tuple[dict, int]:
    v, _ = session(cfg, subject)
    return v, v["emg"].shape[0]


@pytest.mark.parametrize("fmt", ["mat", "mat73", "npz"])
def test_segments_found_are_the_segments_written(fmt, tmp_path, caplog):
    truth = generate_sessions(tmp_path / "raw", SessionConfig(**{**SMALL.__dict__, "fmt": fmt}))
    with caplog.at_level(logging.WARNING, logger="semg_hht.hht"):
        summary = make_hht(
            hht_cfg(f"input={tmp_path / 'raw' / 'manifest.csv'}", f"output={tmp_path / 'out'}", "preset=ninapro", *FAST)
        )
    table = rows(tmp_path / "out")
    assert summary["segments"] == len(table) == len(truth) == 8 and summary["segments_skipped"] == []
    got = [(r["source"], r["movement"], int(r["repetition"]), r["segment_start_s"], r["segment_end_s"]) for r in table]
    want = [(t.file, t.label, t.repetition, str(round(t.start / 200, 6)), str(round(t.end / 200, 6))) for t in truth]
    assert sorted(got) == sorted(want)  # to the sample
    assert {r["subject"] for r in table} == {"1", "2"} and {r["gender"] for r in table} == {"M", "F"}
    assert len({r["recording"] for r in table}) == 8 and {r["window"] for r in table} == {"0"}
    with np.load(tmp_path / "out" / table[0]["file"]) as z:
        assert z["hht"].shape == (4, 16, 16) and int(z["segment"]) == int(table[0]["segment"])
        assert float(z["t_start_s"]) == float(table[0]["segment_start_s"])
    clipped = [r.getMessage() for r in caplog.records if "Nyquist" in r.getMessage()]
    assert len(clipped) == 1 and "used 20-95 Hz at fs=200 Hz" in clipped[0]  # once per run, not per file


def test_rest_is_dropped_or_kept_as_a_class():
    v, n = variables_of(SMALL)
    _, timeline = session(SMALL, 1)
    dropped, _ = find_segments(v, n, 200.0, SegmentSettings(enabled=True), "s.mat")
    kept, _ = find_segments(v, n, 200.0, SegmentSettings(enabled=True, keep_rest=True), "s.mat")
    assert [s.label for s in dropped] == ["1", "1", "2", "2"] and not any(s.rest for s in dropped)
    assert [s.label for s in kept] == ["0", "1", "0", "1", "0", "2", "0", "2", "0"]
    assert [s.repetition for s in kept if s.rest] == [1, 2, 3, 4, 5]  # rest has no repetition vector: counted
    assert [(s.start, s.end) for s in dropped] == [(a, b) for _, _, a, b, _, _ in timeline]
    assert [s.number for s in dropped] == [s.number for s in kept if not s.rest] == [2, 4, 6, 8]
    assert kept[0].start == 0 and kept[-1].end == n


def test_repetitions_touching_without_rest_are_two_segments():
    labels = np.array([0, 3, 3, 3, 3, 0], dtype=float)
    reps = np.array([0, 1, 1, 2, 2, 0], dtype=float)
    segs, _ = find_segments({"restimulus": labels, "rerepetition": reps}, 6, 1.0, SegmentSettings(), "s.mat")
    assert [(s.label, s.repetition, s.start, s.end) for s in segs] == [("3", 1, 1, 3), ("3", 2, 3, 5)]
    no_reps = SegmentSettings(repetition_key=None)
    segs, _ = find_segments({"restimulus": labels}, 6, 1.0, no_reps, "s.mat")
    assert [(s.label, s.repetition, s.start, s.end) for s in segs] == [("3", 1, 1, 5)]


def test_marker_mode_takes_labels_in_protocol_order_and_the_subject_from_the_file(tmp_path):
    cfg = SessionConfig(**{**SMALL.__dict__, "subjects": 1, "layout": "marker", "fmt": "mat73"})
    truth = generate_sessions(tmp_path / "raw", cfg)
    (tmp_path / "raw" / "manifest.csv").unlink()  # folder input: no manifest, fs from reader.fs
    summary = make_hht(
        hht_cfg(
            f"input={tmp_path / 'raw'}",
            f"output={tmp_path / 'out'}",
            "preset=ninapro",
            "reader.fs=200",
            "segment.mode=marker",
            "segment.label_key=marker",
            "segment.labels=[fist,pinch]",
            "segment.reps_per_label=2",
            "filter.bandpass=[20,90]",
            *FAST,
        )
    )
    table = rows(tmp_path / "out")
    assert summary["segments"] == 4 and [t.label for t in truth] == [MOVEMENTS[0]] * 2 + [MOVEMENTS[1]] * 2
    got = sorted((r["movement"], int(r["repetition"]), r["segment_start_s"]) for r in table)
    assert got == sorted((t.label, t.repetition, str(round(t.start / 200, 6))) for t in truth)
    assert {r["subject"] for r in table} == {"1"} and {r["file"][:10] for r in table} == {"EMG_fist_U", "EMG_pinch_"}


def test_short_segment_is_skipped_and_listed_pad_and_windows_keep_their_segment(tmp_path):
    cfg = SessionConfig(**{**SMALL.__dict__, "subjects": 1, "fmt": "npz"})
    truth = generate_sessions(tmp_path / "raw", cfg)
    path = tmp_path / "raw" / truth[0].file
    with np.load(path) as z:
        v = dict(z)
    v["restimulus"][20:30] = 2  # a 50 ms twitch during the first rest
    v["rerepetition"][20:30] = 7
    np.savez(path, **v)
    summary = make_hht(
        hht_cfg(
            f"input={tmp_path / 'raw' / 'manifest.csv'}",
            f"output={tmp_path / 'out'}",
            "preset=ninapro",
            "segment.min_duration_s=0.5",
            "segment.pad_s=0.25",
            "window.length_s=0.5",
            "window.hop_s=0.5",
            *FAST,
        )
    )
    assert summary["segments"] == len(truth)
    [line] = summary["segments_skipped"]
    assert "S1_E1_A1.npz" in line and "label 2, repetition 7" in line and "0.050 s" in line
    table = rows(tmp_path / "out")
    first = [r for r in table if r["segment"] == "4"]  # the first movement (after rest, twitch, rest)
    start = truth[0].start / 200
    assert [int(r["window"]) for r in first] == list(range(len(first))) and len({r["recording"] for r in first}) == 1
    assert float(first[0]["t_start_s"]) == pytest.approx(start - 0.25)  # context kept before the segment
    assert float(first[0]["segment_start_s"]) == pytest.approx(start)
    assert all(r["file"].endswith(f"_w{int(r['window']):02d}.npz") and "_s004_" in r["file"] for r in first)


def _bad(tmp_path: Path, name: str, variables: dict) -> Path:
    path = tmp_path / name
    np.savez(path, **variables)
    return path


BAD = {
    "wrong length": (
        {"restimulus": np.zeros(399), "rerepetition": np.zeros(400)},
        ["segment.label_length=strict"],
        "'restimulus' has 399 values but the signal has 400 samples",
    ),
    "trim through a movement": (
        {"restimulus": np.r_[np.zeros(390), 3 * np.ones(20)], "rerepetition": np.zeros(410)},
        [],
        "10 of the 10 values past the signal are not rest: trimming (segment.label_length=fit) would cut a movement",
    ),
    "pad after a movement": (
        {"restimulus": np.r_[np.zeros(300), 3 * np.ones(50)], "rerepetition": np.zeros(400)},
        [],
        "it stops during a movement (value 3): padding it with rest (segment.label_length=fit) would end",
    ),
    "meta key missing": (
        {"restimulus": np.zeros(400), "rerepetition": np.zeros(400), "gender": np.str_("m")},
        ["segment.meta_keys={age:age}"],
        "no variable 'age' (segment.meta_keys.age)",
    ),
    "gender code": (
        {"restimulus": np.zeros(400), "rerepetition": np.zeros(400), "sex": np.float64(2)},
        ["segment.meta_keys={gender:sex}"],
        "'sex' (segment.meta_keys.gender) is '2', not a gender (m, f, male, female, man, woman: any case)",
    ),
    "missing key": ({"stimulus": np.zeros(400)}, [], "no array 'restimulus' (arrays: emg, stimulus)"),
    "odd edges": (
        {"marker": np.r_[np.zeros(200), 100 * np.ones(200)]},
        ["segment.mode=marker", "segment.label_key=marker", "segment.labels=[fist]", "segment.open_end=refuse"],
        "'marker' is still on at the last sample (segment 2 (label fist, repetition 1, 1.000-2.000 s)): a movement"
        " has not ended when the session ends",
    ),
    "count": (
        {"marker": np.r_[np.zeros(100), 100 * np.ones(200), np.zeros(100)]},
        ["segment.mode=marker", "segment.label_key=marker", "segment.labels=[fist,pinch]"],
        "marks 1 movements but segment.labels x reps_per_label gives 2",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sessions_fail_with_one_line_naming_the_file_and_the_fix(case, tmp_path):
    extra, overrides, message = BAD[case]
    emg = np.random.default_rng(0).standard_normal((400, 2))
    path = _bad(tmp_path, "S1.npz", {"emg": emg, **extra})
    s = settings_from_cfg(hht_cfg(f"input={path}", f"output={tmp_path / 'out'}", "preset=ninapro_db5", *overrides))
    [job], _ = discover(path, s.inputs, scheme=s.filename_scheme)
    result = convert_recording(job, s, str(tmp_path / "out"), s.signature(), versions())
    assert message in result.error and str(path) in result.error and " -> " in result.error
    assert "\n" not in result.error and result.rows == []


def test_marker_mode_without_labels_and_csv_sessions_are_refused(tmp_path):
    with pytest.raises(SemgError, match="segment.mode=marker needs segment.labels"):
        settings_from_cfg(hht_cfg("input=a", "output=b", "segment.enabled=true", "segment.mode=marker"))
    path = tmp_path / "s.csv"
    path.write_text("1,2\n3,4\n")
    s = settings_from_cfg(hht_cfg(f"input={path}", f"output={tmp_path / 'out'}", "preset=ninapro_db5"))
    [job], _ = discover(path, s.inputs, scheme=s.filename_scheme)
    error = convert_recording(job, s, str(tmp_path / "out"), s.signature(), versions()).error
    assert "segment.enabled needs session files with 'restimulus' (.mat or .npz), not .csv" in error


def test_settings_signature_is_unchanged_while_segmenting_is_off():
    """Outputs made before segmenting existed are still reused (the hash is main's)."""
    off = settings_from_cfg(hht_cfg("input=a", "output=b"))  # conf/hht.yaml as shipped
    assert off.signature() == "a17e1f4fa9dca9ff"
    assert replace(off, segment=SegmentSettings(enabled=True)).signature() != "a17e1f4fa9dca9ff"


def test_sharded_manifest_orders_segment_recordings_numerically():
    assert sorted(["002_s001", "001_s010", "001_s002", "10"], key=_recording_key) == [
        "001_s002",
        "001_s010",
        "002_s001",
        "10",
    ]


def test_subject_disjoint_training_on_segmented_sessions(tmp_path):
    from semg_hht.training import train
    from tests.helpers import TINY, compose_cfg

    cfg = SessionConfig(subjects=4, movements=3, reps=2, channels=8, fs=200.0, move_s=1.5, rest_s=1.0)
    generate_sessions(tmp_path / "raw", cfg)
    out = tmp_path / "hht"
    make_hht(
        hht_cfg(f"input={tmp_path / 'raw' / 'manifest.csv'}", f"output={out}", "preset=ninapro_db5", "spectrum.size=32")
    )
    metrics = train(
        compose_cfg(
            [
                *TINY,
                f"paths.data_dir={out}",
                f"paths.output_dir={tmp_path / 'run'}",
                "data.label_source=manifest",
                "data.manifest=manifest.csv",
                "data.classes.movement=null",
                "data.split=group",
                "data.n_folds=4",
                "model.in_channels=8",
                "trainer.max_epochs=1",
            ]
        )
    )
    split = list(csv.DictReader((tmp_path / "run" / "split.csv").open()))
    train_subjects = {r["subject"] for r in split if r["subset"] == "train"}
    val_subjects = {r["subject"] for r in split if r["subset"] == "val"}
    assert len(split) == 4 * 3 * 2 and len(val_subjects) == 1 and not train_subjects & val_subjects
    assert metrics["classes"] == ["1", "2", "3"]


def test_parallel_run_shows_file_and_segment_progress_and_matches_serial(tmp_path, capsys):
    generate_sessions(tmp_path / "raw", SMALL)
    args = [f"input={tmp_path / 'raw' / 'manifest.csv'}", "preset=ninapro_db5", *FAST]
    make_hht(hht_cfg(*args, f"output={tmp_path / 'serial'}"))
    capsys.readouterr()
    make_hht(hht_cfg(*args, f"output={tmp_path / 'parallel'}", "workers=2", "progress=true"))
    err = capsys.readouterr().err
    assert "make_hht: 100%" in err and "2/2" in err and "segments: 100%" in err and "8/8" in err
    assert rows(tmp_path / "serial") == rows(tmp_path / "parallel")
    for r in rows(tmp_path / "serial"):
        with np.load(tmp_path / "serial" / r["file"]) as a, np.load(tmp_path / "parallel" / r["file"]) as b:
            assert np.array_equal(a["hht"], b["hht"])


def test_session_generator_is_seeded_and_its_vectors_agree():
    a, timeline = session(SMALL, 1)
    b, _ = session(SMALL, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["emg"], session(SMALL, 2)[0]["emg"])
    stim, restim = a["stimulus"].ravel(), a["restimulus"].ravel()
    moving = restim > 0
    assert np.array_equal(stim[moving], restim[moving])  # the activity lies inside its cue
    assert (a["rerepetition"].ravel()[~moving] == 0).all() and a["emg"].shape == (len(stim), 4)
    assert [(g, r) for g, r, *_ in timeline] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    marker, _ = session(SessionConfig(**{**SMALL.__dict__, "layout": "marker"}), 1)
    assert set(np.unique(marker["marker"])) == {0.0, 100.0} and "restimulus" not in marker
    assert np.array_equal(marker["marker"].ravel() > 0, moving)


def test_segments_shorter_than_a_window_are_listed_and_a_rerun_reuses_or_refuses(tmp_path):
    truth = generate_sessions(tmp_path / "raw", SessionConfig(**{**SMALL.__dict__, "subjects": 1}))
    args = [f"input={tmp_path / 'raw' / 'manifest.csv'}", f"output={tmp_path / 'out'}", "preset=ninapro_db5", *FAST]
    summary = make_hht(hht_cfg(*args, "window.length_s=1.4"))
    short = [t for t in truth if (t.end - t.start) / 200 < 1.4]
    assert 0 < len(short) < len(truth) and summary["segments"] == len(truth) - len(short)
    assert len(summary["segments_skipped"]) == len(short)
    assert all("shorter than one window" in line for line in summary["segments_skipped"])
    again = make_hht(hht_cfg(*args, "window.length_s=1.4"))
    assert again["written"] == 0 and again["skipped"] == summary["written"]
    with pytest.raises(SemgError, match="holds matrices of another conversion"):  # other settings: never mixed in
        make_hht(hht_cfg(*args, "window.length_s=1.4", "segment.pad_s=0.1"))


@pytest.mark.parametrize("limits", [["segment.min_duration_s=5"], ["segment.max_duration_s=0.2"], "all rest"])
def test_a_run_that_makes_no_matrix_is_an_error_and_writes_no_manifest(tmp_path, limits):
    cfg = SessionConfig(**{**SMALL.__dict__, "subjects": 1, "fmt": "npz"})
    truth = generate_sessions(tmp_path / "raw", cfg)
    if limits == "all rest":
        path = tmp_path / "raw" / truth[0].file
        with np.load(path) as z:
            v = dict(z)
        v["restimulus"][:] = 0
        v["rerepetition"][:] = 0
        np.savez(path, **v)
        limits, says = [], "no movement segment found"
    else:
        says = "segments skipped (listed above)"
    out = tmp_path / "out"
    with pytest.raises(SemgError, match="no matrix made from 1 recording") as err:
        make_hht(
            hht_cfg(f"input={tmp_path / 'raw' / 'manifest.csv'}", f"output={out}", "preset=ninapro", *limits, *FAST)
        )
    assert says in str(err.value) and not (out / "manifest.csv").exists()
