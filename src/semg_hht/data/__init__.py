from semg_hht.data.datamodule import HHTDataModule

__all__ = ["HHTDataModule"]
