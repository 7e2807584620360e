"""Output names in the seed scheme, safe for the training side's file-name label parser.

Labelled:   {MUSCLE}_{movement}_{G}_{###}.npz   e.g. BICEPS_full_M_006.npz, CH1_m3_U_012.npz
Unlabelled: Test_{MUSCLE}_{###}.npz
Windows (only when window.length_s is set) append _w{k}: BICEPS_full_M_006_w03.npz.
Segments of a session (segment.enabled) append _s{k} before it: EMG_3_U_001_s012_w00.npz.

The parser reads gender with [_-]([MF])[_-], movement by substrings (fatiguetest/full, half,
invalid/wrong) and treats names starting with "test" as unlabelled. So the muscle token is
alphanumeric upper case and may not be M/F or contain any of those words; the movement token is
lower case (never _M_/_F_) and canonical (full/half/invalid) whenever a synonym matches; the
gender token is M, F, or U (unknown, which the parser does not read as a gender).
"""

from __future__ import annotations

import re

LABEL_WORDS = ("fatiguetest", "full", "half", "invalid", "wrong", "test")


def muscle_token(name: str, fallback: str) -> str:
    """Upper-case alphanumeric channel/muscle token; `fallback` when it would confuse the parser."""
    token = re.sub(r"[^A-Za-z0-9]", "", str(name)).upper()
    if not token or token in ("M", "F") or any(w in token.lower() for w in LABEL_WORDS):
        return fallback
    return token


def movement_class(label: str) -> str | None:
    """The seed's movement synonyms: fatiguetest/full -> full, half, invalid/wrong -> invalid."""
    low = str(label).lower()
    if "fatiguetest" in low or "full" in low:
        return "full"
    if "half" in low:
        return "half"
    if "invalid" in low or "wrong" in low:
        return "invalid"
    return None


def movement_token(label: str) -> str:
    """Canonical class where a synonym matches, else the label as lower-case alphanumerics."""
    canonical = movement_class(label)
    if canonical:
        return canonical
    token = re.sub(r"[^a-z0-9]", "", str(label).lower())
    if token.startswith("test"):
        token = "mv" + token
    return "mv" + token if token in ("m", "f") else token


def gender_token(label: str | None) -> str:
    """M or F from m/f/male/female/man/woman (any case); U when unknown."""
    low = str(label or "").strip().lower()
    if low in ("m", "male", "man"):
        return "M"
    if low in ("f", "female", "woman"):
        return "F"
    return "U"


def gender_value(label: str | None) -> str:
    """Manifest value: M, F or '' (unknown)."""
    g = gender_token(label)
    return "" if g == "U" else g


def labels_from_name(name: str) -> dict[str, str]:
    """Seed file-name rules applied to a raw recording's name (folder input)."""
    if name.lower().startswith("test"):
        return {}
    out = {}
    g = re.search(r"[_-]([MF])[_-]", name)
    if g:
        out["gender"] = g.group(1)
    mv = movement_class(name)
    if mv:
        out["movement"] = mv
    return out


def recording_id(number: int, digits: int, segment: int | None = None) -> str:
    """The recording part of an output name: 006, or 001_s012 for segment 12 of session 1."""
    return f"{number:0{digits}d}" + ("" if segment is None else f"_s{segment:03d}")


def output_stem(
    muscle: str,
    movement: str | None,
    gender: str | None,
    number: int,
    digits: int,
    window: int | None,
    segment: int | None = None,
) -> str:
    num = recording_id(number, digits, segment)
    suffix = "" if window is None else f"_w{window:02d}"
    mv = movement_token(movement) if movement else ""
    if not mv:
        return f"Test_{muscle}_{num}{suffix}"
    return f"{muscle}_{mv}_{gender_token(gender)}_{num}{suffix}"
