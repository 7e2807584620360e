"""Output names read back correctly with the training side's file-name parser, whatever the channel/label
text; the words that must stay out of them come from the scheme (conf/filename_scheme/)."""

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semg_hht.errors import SemgError
from semg_hht.hht.naming import check_scheme, gender_token, muscle_token, output_stem
from tests.helpers import default_scheme, read_back

SCHEME = default_scheme()


def stem(muscle, movement, gender, number, window=None, scheme=SCHEME):
    return output_stem(scheme, muscle, movement, gender, number, 3, window)


def test_seed_scheme_examples():
    assert stem("BICEPS", "full", "M", 6) == "BICEPS_full_M_006"
    assert stem("CH1", "half", "female", 12) == "CH1_half_F_012"
    assert stem("CH1", "m3", "", 7) == "CH1_m3_U_007"
    assert stem("CH2", "", "M", 1234, 4) == "Test_CH2_1234_w04"
    assert stem("BICEPS", "wrong", "M", 1) == "BICEPS_invalid_M_001"
    assert stem("BICEPS", "m", "M", 1) == "BICEPS_mvm_M_001"  # _m_ would read as a gender in upper case
    assert stem("BICEPS", "test run", "M", 1) == "BICEPS_mvtestrun_M_001"
    assert read_back("BICEPS_full_M_006.npz") == {"gender": "M", "movement": "full"}
    assert read_back("Test_CH2_1234_w04.npz") is None


def test_dangerous_channel_names_fall_back():
    for name in ("Half-moon", "full", "TEST1", "m", "F", "wrong_way", "", "__", "fatiguetest"):
        assert muscle_token(name, "CH3", SCHEME) == "CH3", name
    assert muscle_token("left biceps-2", "CH1", SCHEME) == "LEFTBICEPS2"


def test_the_words_kept_out_of_names_are_the_schemes():
    """A synonym added to the scheme is kept out of muscle tokens and named as its class; the unlabelled
    prefix names unlabelled outputs."""
    custom = replace(SCHEME, movement_synonyms={**SCHEME.movement_synonyms, "partial": "half"}, unlabeled_prefix="unl")
    assert muscle_token("PARTIALS", "CH1", SCHEME) == "PARTIALS"
    assert muscle_token("PARTIALS", "CH1", custom) == muscle_token("UNLOADED", "CH1", custom) == "CH1"
    assert stem("CH1", "partial", "F", 2) == "CH1_partial_F_002" and read_back("CH1_partial_F_002.npz") is None
    assert stem("CH1", "partial", "F", 2, scheme=custom) == "CH1_half_F_002"
    assert stem("CH1", "unloaded", "F", 2, scheme=custom) == "CH1_mvunloaded_F_002"
    assert stem("CH1", "", "F", 2, scheme=custom) == "Unl_CH1_002" and custom.is_unlabeled("Unl_CH1_002.npz")


def test_folder_labels_use_the_scheme():
    assert SCHEME.found("S01_M_full_r01") == {"gender": "M", "movement": "full"}
    assert SCHEME.found("subj3-F-wrong") == {"gender": "F", "movement": "invalid"}
    assert SCHEME.found("S01_M_curl") == {"gender": "M"}
    assert SCHEME.found("test_M_full") == {}
    assert SCHEME.found("1_1_3") == {}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"gender_pattern": "_(M)_"}, "filename_scheme.gender_pattern"),  # F would not read back
        ({"gender_pattern": "_[MFU]_"}, "filename_scheme.gender_pattern"),  # no group 1
        ({"gender_pattern": "_([MF]_"}, "filename_scheme.gender_pattern"),  # not a regex
        ({"movement_synonyms": {"partial": "half"}}, "filename_scheme.movement_synonyms.partial"),
        ({"movement_synonyms": {"full": "Full"}}, "filename_scheme.movement_synonyms.full"),
    ],
)
def test_a_scheme_that_cannot_read_its_own_names_is_refused(change, key):
    with pytest.raises(SemgError, match=re.escape(key)):
        check_scheme(replace(SCHEME, **change))
    check_scheme(SCHEME)


texts = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=20)


@given(muscle=texts, movement=texts, gender=st.sampled_from(["M", "F", "m", "female", "", "x", "Male"]))
def test_names_never_mislead_the_parser(muscle, movement, gender):
    name = stem(muscle_token(muscle, "CH1", SCHEME), movement, gender, 7)
    parsed = read_back(name + ".npz")
    expected_mv = SCHEME.movement(movement)
    g = gender_token(gender)
    if not any(c.isalnum() for c in movement):  # any letter or digit, in any script, names a class
        assert name.startswith("Test_") and parsed is None
    elif expected_mv is None or g == "U":
        assert parsed is None  # a label the parser does not know, or no gender: never a wrong label
    else:
        assert parsed == {"gender": g, "movement": expected_mv}
    assert re.fullmatch(r"[A-Za-z0-9_]+", name)


def test_unicode_labels_keep_a_safe_unique_token_and_stay_labelled():
    names = {label: stem("CH1", label, "M", 1) for label in ("öffnen", "offnen", "握拳", "拳", "Hand open")}
    assert names["Hand open"] == "CH1_handopen_M_001"
    assert names["öffnen"].startswith("CH1_offnen") and names["öffnen"] != names["offnen"]  # folded, not merged
    assert re.fullmatch(r"CH1_u[0-9a-f]{6}_M_001", names["握拳"]) and names["握拳"] != names["拳"]
    assert all(n.isascii() and not n.startswith("Test") for n in names.values())  # never the unlabelled form


def test_a_file_name_that_is_not_utf8_is_refused_before_any_work(tmp_path):
    import os

    from semg_hht.hht.inputs import discover
    from semg_hht.hht.settings import InputSettings

    (tmp_path / "ok.csv").write_text("1\n2\n")
    latin1 = os.path.join(os.fsencode(tmp_path), b"caf\xe9.csv")
    with open(latin1, "w") as f:
        f.write("1\n2\n")
    with pytest.raises(SemgError, match=r"caf\\xe9\.csv: file name is not valid UTF-8.*convmv"):
        discover(tmp_path, InputSettings())


def test_unicode_labels_round_trip_through_make_hht(tmp_path):
    import csv

    from tests.helpers import recordings, run_make_hht

    raw = recordings(tmp_path / "raw", ["a.csv", "b.csv", "c.csv"])
    (raw / "manifest.csv").write_text(
        "path,fs_hz,subject,movement,gender\na.csv,1000,S1,握拳,M\nb.csv,1000,S1,öffnen,F\nc.csv,1000,S2,offnen,F\n",
        encoding="utf-8",
    )
    run_make_hht(raw / "manifest.csv", tmp_path / "out")
    with open(tmp_path / "out" / "manifest.csv", encoding="utf-8", newline="") as f:
        rows = {r["source"]: r for r in csv.DictReader(f)}
    assert [rows[s]["movement"] for s in ("a.csv", "b.csv", "c.csv")] == ["握拳", "öffnen", "offnen"]
    files = [rows[s]["file"] for s in ("a.csv", "b.csv", "c.csv")]
    assert len({f.split("_")[1] for f in files}) == 3 and not any(f.startswith("Test") for f in files)
