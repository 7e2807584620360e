"""Raw sEMG recordings -> Hilbert-Huang matrices (.npz) + manifest.csv.

    python make_hht.py input=<folder or manifest.csv> output=<folder> [key=value ...]

All settings live in conf/hht.yaml; see semg_hht.conversion for what happens.
"""

import hydra
from omegaconf import DictConfig

from semg_hht.conversion import convert
from semg_hht.errors import run_guarded


@hydra.main(version_base="1.3", config_path="conf", config_name="hht")
def main(cfg: DictConfig) -> None:
    run_guarded(convert, cfg)


if __name__ == "__main__":
    main()
