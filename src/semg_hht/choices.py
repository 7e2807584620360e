"""The option lists of config keys, in a module that imports nothing: config_check validates a config
with them before torch, Lightning or scikit-learn is imported (a typo answers in about a second), and the
modules that implement the options import them from here, so a new option is added in one place."""

SPLITS = ("stratified", "group", "none")  # data/splits.py
POOLS = ("global", "time")  # models/encoder.py
HEADS = ("adaptive", "mlp", "linear")  # models/head.py
DEVICES = ("auto", "cpu", "cuda")  # models/inference.py
ADAPT_METHODS = ("head", "last", "full", "prototype")  # adaptation/methods.py
ADAPT_BATCHNORM = ("trained", "support")  # adaptation/methods.py
ADAPT_CHANNEL_ORDER = ("keep", "search")  # adaptation/methods.py
ADAPT_PROTOTYPE_RULES = ("nearest", "lda")  # adaptation/methods.py
