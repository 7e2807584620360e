"""The results table on real sEMG: `python evaluate.py raw=<input manifest.csv> [key=value ...]`, e.g.
`python evaluate.py raw=../shared/data/muscletracker/manifest.csv hardware="2-core CPU"`, with rows
from multiruns: `'sweeps=[{target:movement,label:"CNN tuned",dir:<multirun folder>}]'`.
All settings live in conf/evaluate.yaml; see semg_hht.evaluation.run for what happens."""

import hydra
from omegaconf import DictConfig

from semg_hht import cli
from semg_hht.config_check import EVALUATE

cli.check_overrides(__file__, "evaluate")


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    cli.run("semg_hht.evaluation.run:evaluate", cfg, EVALUATE, cli.evaluate_files)


if __name__ == "__main__":
    main()
