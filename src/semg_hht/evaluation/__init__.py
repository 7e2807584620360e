"""Honest evaluation on real sEMG: classic features + LDA/SVM on the CNN's subject folds, fold
aggregation, the random-vs-subject leakage check, and the Markdown/CSV results table."""
