"""Adapt a trained model to new people from a few labelled repetitions each:
`python adapt.py ckpt=<run>/checkpoints/last.ckpt input=<manifest.csv> support='{repetition:[1]}'`
-> <person>.ckpt (for predict.py), predictions.csv and metrics.json of the query rows, before_after.png."""

import hydra
from omegaconf import DictConfig

from semg_hht.adaptation.run import adapt
from semg_hht.errors import run_guarded


@hydra.main(version_base="1.3", config_path="conf", config_name="adapt")
def main(cfg: DictConfig) -> float:
    metrics = run_guarded(adapt, cfg)
    return metrics["adapted"]["acc"]  # for Hydra sweepers that optimise


if __name__ == "__main__":
    main()
