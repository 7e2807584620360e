"""Adapt a trained model to new people from a few labelled repetitions each:
`python adapt.py ckpt=<run>/checkpoints/last.ckpt input=<manifest.csv> support='{repetition:[1]}'`
-> <person>.ckpt (for predict.py), predictions.csv and metrics.json of the query rows, before_after.png."""

import hydra
from omegaconf import DictConfig

from semg_hht import cli
from semg_hht.config_check import ADAPT

cli.check_overrides(__file__, "adapt")


@hydra.main(version_base="1.3", config_path="conf", config_name="adapt")
def main(cfg: DictConfig) -> float:
    metrics = cli.run("semg_hht.adaptation.run:adapt", cfg, ADAPT, cli.adapt_files)
    return metrics["adapted"]["acc"]  # for Hydra sweepers that optimise


if __name__ == "__main__":
    main()
