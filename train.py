"""Train the movement CNN: `python train.py [overrides]`, e.g. `python train.py experiment=demo`,
`python train.py model.num_layers=5`, `python train.py -m model.num_layers=3,5,7`."""

import hydra
from omegaconf import DictConfig

from semg_hht import cli
from semg_hht.config_check import TRAIN

cli.check_overrides(__file__, "train")  # a misspelt key: one line naming the closest, before Hydra's advice


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = cli.run("semg_hht.training:train", cfg, TRAIN, cli.train_files)  # torch loads after the checks
    return metrics.get(cfg.optimized_metric)  # for Hydra sweepers that optimise


if __name__ == "__main__":
    main()
