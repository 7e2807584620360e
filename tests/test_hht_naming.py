"""Output names read back correctly with the seed's file-name parser, whatever the channel/label text."""

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from semg_hht.data.labels import FilenameScheme
from semg_hht.hht.naming import gender_token, labels_from_name, movement_class, muscle_token, output_stem
from tests.helpers import CONF, parse_filename


def test_seed_scheme_examples():
    assert output_stem("BICEPS", "full", "M", 6, 3, None) == "BICEPS_full_M_006"
    assert output_stem("CH1", "half", "female", 12, 3, None) == "CH1_half_F_012"
    assert output_stem("CH1", "m3", "", 7, 3, None) == "CH1_m3_U_007"
    assert output_stem("CH2", "", "M", 1234, 3, 4) == "Test_CH2_1234_w04"
    assert output_stem("BICEPS", "wrong", "M", 1, 3, None) == "BICEPS_invalid_M_001"
    assert parse_filename("BICEPS_full_M_006.npz") == {"gender": "M", "movement": "full"}
    assert parse_filename("Test_CH2_1234_w04.npz") is None


def test_dangerous_channel_names_fall_back():
    for name in ("Half-moon", "full", "TEST1", "m", "F", "wrong_way", "", "__", "fatiguetest"):
        assert muscle_token(name, "CH3") == "CH3", name
    assert muscle_token("left biceps-2", "CH1") == "LEFTBICEPS2"


def test_folder_labels_use_seed_rules():
    assert labels_from_name("S01_M_full_r01") == {"gender": "M", "movement": "full"}
    assert labels_from_name("subj3-F-wrong") == {"gender": "F", "movement": "invalid"}
    assert labels_from_name("test_M_full") == {}
    assert labels_from_name("1_1_3") == {}


texts = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=20)


@given(muscle=texts, movement=texts, gender=st.sampled_from(["M", "F", "m", "female", "", "x", "Male"]))
def test_names_never_mislead_the_parser(muscle, movement, gender):
    stem = output_stem(muscle_token(muscle, "CH1"), movement, gender, 7, 3, None)
    parsed = parse_filename(stem + ".npz")
    expected_mv = movement_class(movement)
    g = gender_token(gender)
    if not re.sub(r"[^a-z0-9]", "", movement.lower()):
        assert stem.startswith("Test_") and parsed is None
    elif expected_mv is None or g == "U":
        assert parsed is None  # a label the parser does not know, or no gender: never a wrong label
    else:
        assert parsed == {"gender": g, "movement": expected_mv}
    assert re.fullmatch(r"[A-Za-z0-9_]+", stem)


def test_make_hht_writes_what_the_training_side_scheme_reads():
    """hht/naming.py's rules agree with conf/data/hht_npz.yaml's filename_scheme (the training side's
    parser): every synonym there names its class here, both for folder input and output names."""
    scheme = FilenameScheme(**OmegaConf.to_container(OmegaConf.load(CONF / "data" / "hht_npz.yaml").filename_scheme))
    for word, cls in scheme.movement_synonyms.items():
        assert movement_class(word) == cls and labels_from_name(f"S1_F_{word}") == {"gender": "F", "movement": cls}
        stem = output_stem("BICEPS", word, "M", 1, 3, None)
        assert scheme.parse(Path(stem + ".npz")).labels == {"movement": cls, "gender": "M"}, stem
    assert scheme.is_unlabeled(output_stem("BICEPS", "", None, 1, 3, None) + ".npz")
    assert labels_from_name(f"{scheme.unlabeled_prefix}_M_full") == {}
