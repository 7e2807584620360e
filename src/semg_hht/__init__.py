"""semg-hht: surface-EMG -> Hilbert-Huang time-frequency matrices -> CNN / SVM classifiers."""

import os

from omegaconf import OmegaConf

__version__ = "0.1.0"

# ${pid:} ends the default run folder names (conf/hydra, conf/hht.yaml): two runs started in the same
# second never share a folder. Registered here so any composition of conf/ resolves it.
if not OmegaConf.has_resolver("pid"):
    OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True)  # a launcher's jobs: the launcher's
