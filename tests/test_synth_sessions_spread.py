"""The session generator's difficulty knob (synth.sessions --spread): people wear the armband rotated, their
electrodes and movements are their own and repetitions differ, so a movement's pattern over the channels is no
longer the same for everyone; --spread 0 (the default) leaves the sessions as they were."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from semg_hht.errors import SemgError
from semg_hht.synth.sessions import SessionConfig, generate_sessions, main, session

SMALL = SessionConfig(subjects=2, movements=3, reps=2, channels=4, fs=200.0, move_s=1.0, rest_s=0.6)


def test_the_default_is_the_sessions_as_before():
    """Subject 2's per-channel RMS (in units of cfg.volts) as the generator wrote it before --spread existed."""
    variables, _ = session(SMALL, 2)
    rms = np.sqrt((variables["emg"] ** 2).mean(0)) / SMALL.volts
    np.testing.assert_allclose(rms, [0.335831, 0.241577, 0.255957, 0.356298], rtol=1e-5)
    spread, timeline = session(replace(SMALL, spread=1.0), 2)
    assert timeline == session(SMALL, 2)[1]  # the protocol's timeline and the label vectors are untouched
    assert all(np.array_equal(spread[k], variables[k]) for k in variables if k != "emg")
    assert spread["emg"].shape == variables["emg"].shape and not np.allclose(spread["emg"], variables["emg"])


def patterns(cfg: SessionConfig) -> np.ndarray:
    """(person, movement, channel): each movement's mean RMS over the channels, scaled to unit length."""
    out = []
    for subject in range(1, cfg.subjects + 1):
        variables, timeline = session(cfg, subject)
        emg = variables["emg"]
        rms = np.zeros((cfg.movements, cfg.channels))
        for g, _, a, b, _, _ in timeline:
            rms[g - 1] += np.sqrt((emg[a:b] ** 2).mean(0))
        out.append(rms / np.linalg.norm(rms, axis=1, keepdims=True))
    return np.stack(out)


def test_spread_makes_a_movements_pattern_differ_between_people():
    cfg = replace(SMALL, subjects=6, channels=8)
    for spread, (low, high) in {0.0: (0.97, 1.0), 1.0: (0.5, 0.9)}.items():
        p = patterns(replace(cfg, spread=spread))
        same = [p[i, g] @ p[j, g] for i in range(6) for j in range(i) for g in range(cfg.movements)]
        assert low < np.mean(same) < high, (spread, np.mean(same))  # cosine similarity of two people's patterns


def test_a_negative_spread_is_refused_and_the_command_says_what_it_made(tmp_path, capsys):
    with pytest.raises(SemgError, match="--spread -1.0 is negative -> pass 0"):
        generate_sessions(tmp_path / "a", replace(SMALL, spread=-1.0))
    main(["--out", str(tmp_path / "b"), "--subjects", "1", "--channels", "2", "--move", "1", "--spread", "0.5"])
    assert capsys.readouterr().out.rstrip().endswith("(people differ: --spread 0.5)")
