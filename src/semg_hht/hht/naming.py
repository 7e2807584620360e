"""Output names in the file-name scheme (conf/filename_scheme/), safe for the training side's parser.

Labelled:   {MUSCLE}_{movement}_{G}_{###}.npz   e.g. BICEPS_full_M_006.npz, CH1_m3_U_012.npz
Unlabelled: {Prefix}_{MUSCLE}_{###}.npz          e.g. Test_CH2_012.npz (the scheme's unlabeled_prefix)
Windows (only when window.length_s is set) append _w{k}: BICEPS_full_M_006_w03.npz.
Segments of a session (segment.enabled) append _s{k} before it: EMG_3_U_001_s012_w00.npz.

The parser (semg_hht.filename_scheme) reads the gender with the scheme's gender_pattern, the movement
from the first synonym found anywhere in the name, and takes names starting with the unlabeled prefix
as unlabelled. So, in the scheme's own words: the muscle token is alphanumeric upper case, never reads
as a gender and contains none of the scheme's words (synonyms, prefix); the movement token is lower
case, never reads as a gender, and is the class itself whenever a synonym matches; the gender token is
M, F, or U (unknown). check_scheme refuses a scheme that would not read those back.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from semg_hht.errors import SemgError
from semg_hht.filename_scheme import FilenameScheme


def _reads_as_gender(token: str, scheme: FilenameScheme) -> bool:
    """Whether the token, between separators and in upper case (as a muscle token is), matches the
    gender pattern: the default scheme's _M_ / _F_ for M, F, m or f."""
    return scheme.gender(f"_{token.upper()}_") is not None


def muscle_token(name: str, fallback: str, scheme: FilenameScheme) -> str:
    """Upper-case alphanumeric channel/muscle token; `fallback` when it would confuse the parser."""
    token = re.sub(r"[^A-Za-z0-9]", "", str(name)).upper()
    if not token or _reads_as_gender(token, scheme) or any(w in token.lower() for w in scheme.words):
        return fallback
    return token


def movement_token(label: str, scheme: FilenameScheme) -> str:
    """The class where a synonym matches the label, else the label as lower-case alphanumerics, kept
    from reading as a gender or starting with the unlabeled prefix."""
    canonical = scheme.movement(str(label))
    if canonical:
        return canonical
    token = ascii_token(str(label))
    prefix = scheme.unlabeled_prefix.lower()
    return "mv" + token if (prefix and token.startswith(prefix)) or _reads_as_gender(token, scheme) else token


def ascii_token(label: str) -> str:
    """Lower-case ASCII letters and digits that name `label` in a file name, unique per label: accents
    folded (öffnen -> offnen), and where any character had to go, a short hash of the whole label
    (öffnen -> offnen + 4 hex, 握拳 -> u + 6 hex). The manifest keeps the label as given."""
    folded = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    token = re.sub(r"[^a-z0-9]", "", folded)
    if label.isascii() or not any(c.isalnum() for c in label):  # nothing but spaces and signs: no label
        return token
    digest = hashlib.sha1(label.encode("utf-8")).hexdigest()
    return token + digest[:4] if token else "u" + digest[:6]


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


def recording_id(number: int, digits: int, segment: int | None = None) -> str:
    """The recording part of an output name: 006, or 001_s012 for segment 12 of session 1."""
    return f"{number:0{digits}d}" + ("" if segment is None else f"_s{segment:03d}")


def output_stem(
    scheme: FilenameScheme,
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
    mv = movement_token(movement, scheme) if movement else ""
    if not mv:
        return f"{scheme.unlabeled_prefix.capitalize()}_{muscle}_{num}{suffix}"
    return f"{muscle}_{mv}_{gender_token(gender)}_{num}{suffix}"


def check_scheme(scheme: FilenameScheme) -> None:
    """Refuse a scheme that cannot read back the names make_hht writes in it: each class as the
    movement token (a lower-case alphanumeric word the synonyms map to that class), M and F as
    genders and U as none. One line naming the key."""
    at = "filename_scheme."  # its node in conf/hht.yaml
    try:
        genders = [scheme.gender(f"_{g}_") for g in ("M", "F", "U")]
    except (re.error, IndexError):  # no valid regex, or no group 1
        genders = None
    if genders != ["M", "F", None]:
        raise SemgError(
            f"config key '{at}gender_pattern'={scheme.gender_pattern!r} must read _M_ and _F_ (group 1) and not _U_",
            fix="e.g. '[_-]([MF])[_-]'",
        )
    for key, cls in scheme.movement_synonyms.items():
        if not re.fullmatch(r"[a-z0-9]+", cls):
            problem, fix = "is not a lower-case alphanumeric word", "name the class like that"
        elif (got := scheme.movement(cls)) != cls:
            hit = next((f" ({at}movement_synonyms.{k})" for k in scheme.movement_synonyms if k.lower() in cls), "")
            problem, fix = f"reads back as {got}{hit}", f"make {cls}: {cls} the first synonym found in '{cls}'"
        else:
            continue
        raise SemgError(
            f"config key '{at}movement_synonyms.{key}'={cls!r}: output names carry the class, which {problem}", fix=fix
        )
