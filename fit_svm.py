"""Gender SVM on the frozen encoder: `python fit_svm.py ckpt=<run>/checkpoints/best.ckpt`,
`python fit_svm.py ckpt=null` (random-encoder baseline), `python fit_svm.py -m ckpt=null,<path>`."""

import hydra
from omegaconf import DictConfig

from semg_hht import cli
from semg_hht.config_check import FIT_SVM

cli.check_overrides(__file__, "fit_svm")


@hydra.main(version_base="1.3", config_path="conf", config_name="fit_svm")
def main(cfg: DictConfig) -> float | None:
    metrics = cli.run("semg_hht.svm:fit_svm", cfg, FIT_SVM, cli.fit_svm_files)
    return metrics.get("val/balanced_acc")  # for Hydra sweepers that optimise


if __name__ == "__main__":
    main()
