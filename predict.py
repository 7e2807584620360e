"""Predict unlabeled recordings: `python predict.py ckpt=<run>/checkpoints/best.ckpt
svm=<fit_svm run>/svm.skops [input=<folder>]` -> predictions.csv in the run folder."""

import hydra
from omegaconf import DictConfig

from semg_hht.errors import run_guarded
from semg_hht.prediction import predict


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    run_guarded(predict, cfg)


if __name__ == "__main__":
    main()
