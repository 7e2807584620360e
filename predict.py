"""Predict unlabeled recordings: `python predict.py ckpt=<run>/checkpoints/best.ckpt
svm=<fit_svm run>/svm.skops [input=<folder>]` -> predictions.csv in the run folder."""

import hydra
from omegaconf import DictConfig

from semg_hht import cli
from semg_hht.config_check import PREDICT

cli.check_overrides(__file__, "predict")


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    cli.run("semg_hht.prediction:predict", cfg, PREDICT, cli.predict_files)


if __name__ == "__main__":
    main()
