"""conversion.yaml: how make_hht converted its output folder, written beside manifest.csv after every run that
completes the manifest. evaluate.py hht_dir=<folder> reads the raw recordings with these settings, so make_hht's
overrides need not be repeated there. The settings are recorded resolved (preset and defaults applied), less
how the run went (input, output, workers, shards, ...) and preview.png's settings."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from semg_hht.errors import SemgError
from semg_hht.hht.settings import RUN_KEYS, Settings, settings_from_cfg
from semg_hht.io import write_text

RECORD = "conversion.yaml"
MADE_BY = "semg_hht make_hht"  # the record's first key: the file is ours to replace
HEADER = (
    "# make_hht's record of the settings this folder was converted with (rewritten by every complete run);\n"
    "# evaluate.py hht_dir=<this folder> reads the raw recordings with them.\n"
)


def recorded(s: Settings) -> dict[str, Any]:
    """The settings as the record holds them: plain YAML types (tuples as lists), in the schema's order."""
    kept = {k: v for k, v in asdict(s).items() if k not in RUN_KEYS | {"preview"}}
    return json.loads(json.dumps(kept, default=str))


def write_record(out_dir: Path, s: Settings) -> Path:
    record = {"made_by": MADE_BY, "settings": recorded(s)}
    return write_text(out_dir / RECORD, HEADER + yaml.safe_dump(record, sort_keys=False, allow_unicode=True))


def read_record(out_dir: Path) -> dict[str, Any] | None:
    """The recorded settings of make_hht's output folder; None when it has no record (converted before
    records were written). A conversion.yaml make_hht did not write is refused, never read or replaced."""
    path = out_dir / RECORD
    if not path.exists():
        return None
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        record = None
    if not isinstance(record, dict) or record.get("made_by") != MADE_BY or not isinstance(record.get("settings"), dict):
        raise SemgError(
            f"{RECORD} is not make_hht's record of a conversion", path=path, fix="move it out of the folder"
        )
    return record["settings"]


def recorded_settings(out_dir: Path, settings: dict[str, Any], input_path: str) -> Settings:
    """The Settings a record describes, reading ``input_path`` into ``out_dir``."""
    try:
        return settings_from_cfg({**settings, "input": input_path, "output": str(out_dir)})
    except SemgError as err:
        raise SemgError(
            f"{RECORD}: {err.problem}", path=out_dir / RECORD, fix="convert the folder again with this make_hht"
        ) from None


def differences(recorded_here: dict[str, Any], recorded_there: dict[str, Any], at: str = "") -> list[str]:
    """'key: there -> here' for every setting (dotted key) two records differ in."""
    out = []
    for key in dict.fromkeys([*recorded_there, *recorded_here]):
        here, there = recorded_here.get(key), recorded_there.get(key)
        if isinstance(here, dict) and isinstance(there, dict):
            out += differences(here, there, f"{at}{key}.")
        elif here != there:
            out.append(f"{at}{key}={json.dumps(there)} there, {json.dumps(here)} here")
    return out


def check_conversion(hht_dir: Path, settings: Settings, source: str, fix: str | None = None) -> None:
    """hht_dir's matrices carry the settings signature they were made with: it must be these settings' (read
    from ``source``)."""
    theirs = None
    for path in sorted(hht_dir.glob("*.npz")):
        with contextlib.suppress(Exception), np.load(path, allow_pickle=False) as z:
            theirs = str(z["settings_signature"]) if "settings_signature" in z.files else None
        if theirs is not None:
            break
    if theirs is not None and theirs != settings.signature():
        raise SemgError(
            f"its matrices were made with other make_hht settings than {source} gives ({path.name}: "
            f"settings {theirs}, these {settings.signature()})",
            path=hht_dir,
            fix=fix or "pass make_hht=[<each override make_hht.py converted hht_dir with>], e.g. \"make_hht=['x=y']\"",
        )
