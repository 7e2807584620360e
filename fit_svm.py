"""Gender SVM on the frozen encoder: `python fit_svm.py ckpt=<run>/checkpoints/best.ckpt`,
`python fit_svm.py ckpt=null` (random-encoder baseline), `python fit_svm.py -m ckpt=null,<path>`."""

import hydra
from omegaconf import DictConfig

from semg_hht.errors import run_guarded
from semg_hht.svm import fit_svm


@hydra.main(version_base="1.3", config_path="conf", config_name="fit_svm")
def main(cfg: DictConfig) -> float | None:
    metrics = run_guarded(fit_svm, cfg)
    return metrics.get("val/balanced_acc")  # for Hydra sweepers that optimise


if __name__ == "__main__":
    main()
