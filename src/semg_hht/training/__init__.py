from semg_hht.training.train import train

__all__ = ["train"]
