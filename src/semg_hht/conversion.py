"""convert(cfg) -> summary: the whole of make_hht.py (config: conf/hht.yaml).

semg_hht.hht.pipeline converts; then preview.png, a first look at what was made, is drawn here, as
hht/ may not use reporting/ (tests/test_layout.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from semg_hht.hht.pipeline import run
from semg_hht.hht.preview import read_preview
from semg_hht.hht.settings import Settings, settings_from_cfg
from semg_hht.io import save_figure
from semg_hht.reporting.plots import preview_figure

log = logging.getLogger("semg_hht.hht")
PREVIEW = "preview.png"


def convert(cfg: Any) -> dict:
    """make_hht, then preview.png once the folder's manifest is complete (with shards: by the last one)."""
    s = settings_from_cfg(cfg)
    summary = run(s)
    done = summary["manifest"] and s.preview.enabled
    summary["preview"] = write_preview(Path(summary["output"]), s) if done else None
    return summary


def write_preview(out_dir: Path, s: Settings) -> str | None:
    """preview.png in out_dir, replaced atomically; None (and one log line) when no labelled matrix is
    there to show."""
    p = s.preview
    data = read_preview(out_dir, s.spectrum.size, p.per_class, p.max_classes, p.max_channels)
    if data is None:
        log.info("preview.png skipped: no labelled matrix in %s", out_dir)
        return None
    title = f"{out_dir.name}: classes from the manifest's {data.target} column"
    figure = preview_figure(data.classes, data.channels, data.examples, data.means, data.counts, title, data.freq_axis)
    path = save_figure(figure, out_dir / PREVIEW)
    log.info("make_hht: wrote %s", path)
    return str(path)
