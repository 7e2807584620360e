"""The classic myoelectric baseline, below every user of it: features.py (per-channel time and frequency features),
recordings.py (the raw recordings make_hht converted, read and cut as it did, as feature rows), classifiers.py
(StandardScaler + LDA / RBF SVM, their class probabilities per recording), person.py (a person's classic side,
mixed with their adapted CNN). evaluation/ scores them on folds; adaptation/ and prediction serve a person's."""
