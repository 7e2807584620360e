"""Train the movement CNN: `python train.py [overrides]`, e.g. `python train.py experiment=demo`,
`python train.py model.num_layers=5`, `python train.py -m model.num_layers=3,5,7`."""

import hydra
from omegaconf import DictConfig

from semg_hht.errors import run_guarded
from semg_hht.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_guarded(train, cfg)
    return metrics.get(cfg.optimized_metric)  # for Hydra sweepers that optimise


if __name__ == "__main__":
    main()
