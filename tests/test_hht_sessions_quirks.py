"""Sessions as shipped (issue 33): a label/marker vector longer or shorter than the signal
(segment.label_length), a last repetition still on at the final sample (segment.open_end), per-session
variables such as gender and age (segment.meta_keys), and a session file there twice under two names.
The generator's --quirks mode makes each of them (semg_hht.synth.sessions)."""

from __future__ import annotations

import csv
import shlex
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.hht.pipeline import make_hht
from semg_hht.hht.segments import find_segments, session_meta
from semg_hht.hht.settings import SegmentSettings, settings_from_cfg
from semg_hht.synth.sessions import MOVEMENTS, QUIRKS, SessionConfig, generate_sessions, session
from tests.helpers import hht_cfg

QUIRKY = SessionConfig(subjects=4, movements=2, reps=2, channels=4, fs=200.0, move_s=1.5, rest_s=1.0, quirks=True)
FAST = ["spectrum.size=16", "emd.max_imf=4"]
# The documented command for a marker dataset (README, "Whole sessions"): the defaults do the rest.
MARKER = ["preset=ninapro_db5", "segment.mode=marker", "segment.label_key=marker", "segment.labels=[fist,pinch]",
          "segment.reps_per_label=2", "segment.meta_keys={gender:gender,age:age}"]  # fmt: skip
LABELS = SegmentSettings(enabled=True)
ON_MARKER = SegmentSettings(enabled=True, mode="marker", label_key="marker", labels=("fist", "pinch"), reps_per_label=2)


def rows(d: Path) -> list[dict]:
    with open(d / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def quirky(subject: int, layout: str = "labels") -> tuple[dict, int, list]:
    v, timeline = session(replace(QUIRKY, layout=layout), subject)
    return v, v["emg"].shape[0], timeline


def test_generator_makes_each_quirk_and_a_byte_for_byte_copy(tmp_path):
    truth = generate_sessions(tmp_path, replace(QUIRKY, layout="marker"))
    lengths = {s: (quirky(s, "marker")[0]["marker"].size, quirky(s, "marker")[1]) for s in range(1, 5)}
    assert [QUIRKS[s - 1] for s in range(1, 5)] == ["longer", "shorter", "open_end", None]
    assert lengths[1][0] > lengths[1][1] and lengths[2][0] < lengths[2][1] and lengths[3][0] == lengths[3][1]
    assert lengths[4][0] == lengths[4][1]
    assert [t.file for t in truth if t.open] == ["S3_E1_A1.mat"]
    assert (tmp_path / "S1_E1_A1_copy.mat").read_bytes() == (tmp_path / "S1_E1_A1.mat").read_bytes()
    v, _, _ = quirky(3, "marker")
    assert v["marker"].ravel()[-1] == 100 and str(v["gender"]) == "m" and float(v["age"].ravel()[0]) == 29
    assert str(quirky(2)[0]["gender"]) == "f" and "gender" not in session(replace(QUIRKY, quirks=False), 1)[0]


@pytest.mark.parametrize("layout", ["labels", "marker"])
@pytest.mark.parametrize("subject", [1, 2])
def test_label_length_fit_trims_or_pads_rest_with_one_warning_and_strict_refuses(layout, subject):
    v, n, timeline = quirky(subject, layout)
    ss = LABELS if layout == "labels" else ON_MARKER
    key = ss.label_key
    notes: list[str] = []
    segs, skipped = find_segments(v, n, 200.0, ss, "S.mat", notes=notes)
    assert [(s.start, s.end) for s in segs] == [(a, b) for _, _, a, b, _, _ in timeline] and skipped == []
    [line] = notes  # one line for the session, the repetition vector's length included
    m = v[key].size
    assert line.startswith(f"S.mat: '{key}' has {m} values") and f"the signal has {n} samples" in line
    assert ("trimmed" if subject == 1 else "padded with rest") in line
    if layout == "labels":
        assert f"'rerepetition' has {m} values" in line
    with pytest.raises(SemgError, match=f"'{key}' has {m} values but the signal has {n} samples") as err:
        find_segments(v, n, 200.0, replace(ss, label_length="strict"), "S.mat")
    assert "segment.label_length=fit" in str(err.value)


@pytest.mark.parametrize("layout", ["labels", "marker"])
def test_open_end_skips_and_lists_closes_or_refuses_the_last_repetition(layout):
    v, n, timeline = quirky(3, layout)
    ss = LABELS if layout == "labels" else ON_MARKER
    whole = [(a, b) for _, _, a, b, _, _ in timeline]
    assert whole[-1][1] == n  # the recording stopped during the last repetition
    segs, skipped = find_segments(v, n, 200.0, ss, "S.mat")  # the default: skip, listed
    assert [(s.start, s.end) for s in segs] == whole[:-1]
    [line] = skipped
    label = "2" if layout == "labels" else MOVEMENTS[1]
    assert f"(label {label}, repetition 2," in line and "still on at the last sample (segment.open_end=skip)" in line
    closed, skipped = find_segments(v, n, 200.0, replace(ss, open_end="close"), "S.mat")
    assert [(s.start, s.end) for s in closed] == whole and skipped == [] and closed[-1].label == label
    with pytest.raises(SemgError, match="still on at the last sample .* has not ended when the session ends") as err:
        find_segments(v, n, 200.0, replace(ss, open_end="refuse"), "S.mat")
    assert "segment.open_end=close" in str(err.value) and "S.mat: " in str(err.value)


def test_meta_keys_read_gender_through_its_synonyms_and_any_variable_as_text():
    ss = replace(LABELS, meta_keys={"gender": "sex", "age": "age", "hand": "hand"})
    variables = {"sex": np.str_("Female"), "age": np.array([[31.0]]), "hand": np.array(["right"])}
    assert session_meta(variables, ss, "S.mat") == {"gender": "F", "age": "31", "hand": "right"}
    assert session_meta({**variables, "sex": np.str_("")}, ss, "S.mat")["gender"] == ""  # empty: unknown
    with pytest.raises(SemgError, match=r"S.mat: 'age' \(segment.meta_keys.age\) holds 2 values, not one"):
        session_meta({**variables, "age": np.array([31.0, 32.0])}, ss, "S.mat")
    with pytest.raises(SemgError, match="meta_keys' maps 'age' to '': both need a name"):
        settings_from_cfg(hht_cfg("input=a", "output=b", "segment.meta_keys={age:''}"))


@pytest.mark.parametrize(("layout", "fmt"), [("marker", "mat"), ("labels", "mat73")])
def test_a_quirky_dataset_converts_in_one_command_loudly(layout, fmt, tmp_path, caplog):
    """The issue's target: with documented settings, every quirk converts or is listed, nothing silently."""
    truth = generate_sessions(tmp_path / "raw", replace(QUIRKY, layout=layout, fmt=fmt))
    (tmp_path / "raw" / "manifest.csv").unlink()  # as shipped: a folder of sessions, no manifest
    settings = MARKER if layout == "marker" else ["preset=ninapro_db5", "segment.meta_keys={gender:gender,age:age}"]
    args = [f"input={tmp_path / 'raw'}", f"output={tmp_path / 'out'}", *settings, *FAST]
    with caplog.at_level("WARNING", logger="semg_hht.hht"):
        summary = make_hht(hht_cfg(*args))
    table = rows(tmp_path / "out")
    assert summary["segments"] == len({r["recording"] for r in table}) == sum(not t.open for t in truth) == 15
    [open_end] = summary["segments_skipped"]
    assert "S3_E1_A1.mat: segment" in open_end and "still on at the last sample" in open_end
    assert [w.split("/")[-1].split(":")[0] for w in summary["warnings"]] == ["S1_E1_A1.mat", "S2_E1_A1.mat"]
    [dup] = summary["duplicates"]
    assert dup.startswith(str(tmp_path / "raw" / "S1_E1_A1_copy.mat")) and "same bytes as" in dup
    assert dup.endswith(f"{tmp_path / 'raw' / 'S1_E1_A1.mat'} (converted once, as that file)")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert all(line in logged for line in [open_end, *summary["warnings"], dup])
    assert {r["source"] for r in table} == {f"S{k}_E1_A1.mat" for k in range(1, 5)}  # not the copy
    by_subject = {(r["subject"], r["gender"], r["age"]) for r in table}
    assert by_subject == {("1", "M", "23"), ("2", "F", "26"), ("3", "M", "29"), ("4", "F", "32")}
    assert all(f"_{r['gender']}_" in r["file"] for r in table)  # the names carry it too
    again = make_hht(hht_cfg(*args))  # a rerun reuses every matrix; the folder's sources are no duplicates
    assert again["written"] == 0 and again["duplicates"] == [dup] and rows(tmp_path / "out") == table


def test_a_session_converted_from_another_input_is_a_duplicate(tmp_path):
    generate_sessions(tmp_path / "a", replace(QUIRKY, subjects=1, quirks=False, fmt="npz"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "P7.npz").write_bytes((tmp_path / "a" / "S1_E1_A1.npz").read_bytes())
    out = ["output=" + str(tmp_path / "out"), "preset=ninapro_db5", *FAST]
    make_hht(hht_cfg(f"input={tmp_path / 'a' / 'manifest.csv'}", *out))
    summary = make_hht(hht_cfg(f"input={tmp_path / 'b'}", *out))
    [dup] = summary["duplicates"]
    assert dup == f"{tmp_path / 'b' / 'P7.npz'}: same bytes as S1_E1_A1.npz, already converted into the output folder"
    assert summary["written"] == 0 and {r["source"] for r in rows(tmp_path / "out")} == {"S1_E1_A1.npz"}


def test_meta_keys_that_disagree_with_the_manifest_are_refused(tmp_path):
    generate_sessions(tmp_path / "raw", replace(QUIRKY, subjects=1))
    manifest = tmp_path / "raw" / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",M\n", ",F\n"))  # the session says m
    with pytest.raises(SemgError, match="1 of 1 recordings failed"):
        make_hht(hht_cfg(f"input={manifest}", f"output={tmp_path / 'out'}", "preset=ninapro_db5",
                         "segment.meta_keys={gender:gender}", *FAST))  # fmt: skip


def test_new_keys_keep_the_signature_unless_they_change_a_matrix():
    """Segmented outputs made before these keys existed stay reusable; only open_end=close makes a matrix
    the others would not."""
    base = settings_from_cfg(hht_cfg("input=a", "output=b", "preset=ninapro_db5"))
    same = [{"label_length": "strict"}, {"open_end": "refuse"}, {"meta_keys": {"gender": "gender"}}]
    assert all(replace(base, segment=replace(base.segment, **k)).signature() == base.signature() for k in same)
    assert replace(base, segment=replace(base.segment, open_end="close")).signature() != base.signature()


def test_the_readme_commands_convert_a_quirky_marker_set(tmp_path):
    """The README's two commands for a binary-marker set, as written (shorter sessions, 4 channels and
    16x16 spectra added), in one make_hht run each."""
    from semg_hht.synth.sessions import main

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("--quirks\n", 1)
    generator = shlex.split(block[0].rsplit("\n", 1)[-1] + "--quirks")[3:]  # after python -m <module>
    command = shlex.split(block[1].split("```", 1)[0].replace("\\\n", " "))[2:]
    main([*generator, "--out", str(tmp_path / "raw"), "--channels", "4", "--move", "1", "--rest", "0.6"])
    ours = {"input": tmp_path / "raw", "output": tmp_path / "out", "spectrum.size": 16, "emd.max_imf": 4}
    overrides = [o for o in command if o.split("=")[0] not in ours] + [f"{k}={v}" for k, v in ours.items()]
    summary = make_hht(hht_cfg(*overrides))
    assert summary["segments"] == 4 * 25 - 1 and len(summary["segments_skipped"]) == 1  # subject 3's open end
    assert len(summary["warnings"]) == 2 and len(summary["duplicates"]) == 1
    table = rows(tmp_path / "out")
    assert {r["movement"] for r in table} == set(MOVEMENTS[:5]) and {r["gender"] for r in table} == {"M", "F"}
