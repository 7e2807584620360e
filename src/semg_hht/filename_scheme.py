"""The file-name scheme both sides share: make_hht writes names in it (hht/naming.py) and labels folder
input by it (hht/inputs.py); training and prediction read labels back from names with it (data/,
prediction). Its words are YAML (conf/filename_scheme/, composed by conf/hht.yaml and by
conf/data/hht_npz.yaml), never code: one file for both sides."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from semg_hht.errors import SemgError


@dataclass(frozen=True)
class FilenameScheme:
    """The seed's ``MUSCLE_movement_GENDER_###.npz`` names, e.g. ``BICEPS_fatiguetest_M_006.npz``.

    movement_synonyms maps a lower-case substring of the name to its class, first match wins
    (so 'fatiguetest' -> full is tried before anything else); group 1 of gender_pattern is the gender;
    names starting with ``unlabeled_prefix`` (any case) are unlabeled recordings for prediction.
    The field names are the YAML keys, and checkpoints store them (their data hyper-parameters).
    It is also make_hht's schema for the filename_scheme node (OmegaConf reads the field types).
    """

    movement_synonyms: dict[str, str]
    gender_pattern: str
    unlabeled_prefix: str

    @property
    def words(self) -> tuple[str, ...]:
        """The lower-case words the parser looks for in a name: every synonym and the unlabeled prefix."""
        return tuple(w for w in (*(k.lower() for k in self.movement_synonyms), self.unlabeled_prefix.lower()) if w)

    def is_unlabeled(self, name: str) -> bool:
        return name.lower().startswith(self.unlabeled_prefix.lower())

    def movement(self, name: str) -> str | None:
        """The class of the first synonym found in the name (any case), or None."""
        lower = name.lower()
        return next((cls for key, cls in self.movement_synonyms.items() if key.lower() in lower), None)

    def gender(self, name: str) -> str | None:
        found = re.search(self.gender_pattern, name)
        return found.group(1) if found else None

    def found(self, name: str) -> dict[str, str]:
        """What a name carries, as far as it goes: {} when unlabeled, else its movement and/or gender."""
        if self.is_unlabeled(name):
            return {}
        labels = {"movement": self.movement(name), "gender": self.gender(name)}
        return {key: value for key, value in labels.items() if value is not None}

    def labels(self, path: Path) -> dict[str, str]:
        """A matrix file's labels: {} when unlabeled, else movement and gender; raises SemgError when a
        labelled name lacks either."""
        labels = self.found(path.name)
        if self.is_unlabeled(path.name):
            return labels
        missing = [what for what in ("gender", "movement") if what not in labels]
        if missing:
            raise SemgError(
                f"cannot read the {' and '.join(missing)} from the file name",
                path=path,
                fix=f"name it MUSCLE_movement_GENDER_###.npz (movement one of "
                f"{sorted(set(self.movement_synonyms))}, gender _M_/_F_), or start it with "
                f"'{self.unlabeled_prefix}' for an unlabeled file, or use data.label_source=manifest",
            )
        return labels
