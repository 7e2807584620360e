"""Raw sEMG recordings -> Hilbert-Huang matrices (.npz) + manifest.csv.

    python make_hht.py input=<folder or manifest.csv> output=<folder> [key=value ...]

All settings live in conf/hht.yaml; see semg_hht.conversion for what happens.
"""

import hydra
from omegaconf import DictConfig

from semg_hht import cli

cli.check_overrides(__file__, "hht")


@hydra.main(version_base="1.3", config_path="conf", config_name="hht")
def main(cfg: DictConfig) -> None:
    cli.run("semg_hht.conversion:convert", cfg)  # hht/settings.py checks its keys (its dataclasses)


if __name__ == "__main__":
    main()
