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


SIGNED = "semg-hht make_hht preview"  # in the PNG's text: the file is ours to replace


def _ours_or_absent(path: Path) -> bool:
    """A user's own preview.png in the output folder was replaced silently; ours carry SIGNED."""
    if not path.exists():
        return True
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.info.get("Software") == SIGNED
    except Exception:  # not an image we can read: not ours either
        return False


def write_preview(out_dir: Path, s: Settings) -> str | None:
    """preview.png in out_dir, replaced atomically; None (and one log line) when no labelled matrix is
    there to show."""
    p = s.preview
    if not _ours_or_absent(out_dir / PREVIEW):
        log.warning(
            "%s is not a make_hht preview: left as it is, no preview written -> move it, or preview.enabled=false",
            out_dir / PREVIEW,
        )
        return None
    data = read_preview(out_dir, s.spectrum.size, p.per_class, p.max_classes, p.max_channels)
    if data is None:
        log.info("preview.png skipped: no labelled matrix in %s", out_dir)
        return None
    title = f"{out_dir.name}: classes from the manifest's {data.target} column"
    figure = preview_figure(data.classes, data.channels, data.examples, data.means, data.counts, title, data.freq_axis)
    path = save_figure(figure, out_dir / PREVIEW, metadata={"Software": SIGNED})
    log.info("make_hht: wrote %s", path)
    return str(path)
