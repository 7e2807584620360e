"""Third-party output that is not ours to fix, kept out of a run's console (everything else stays)."""

from __future__ import annotations

import logging
import warnings

# Lightning's own logger for rank_zero_info (the fabric and pytorch modules each set one)
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger" advert, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_third_party() -> None:
    # torch deprecated LeafSpec; Lightning's utilities/_pytree.py still uses it (a FutureWarning per fit)
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoAdverts) for f in logger.filters):
            logger.addFilter(_NoAdverts())
