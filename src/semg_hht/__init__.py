"""semg-hht: surface-EMG -> Hilbert-Huang time-frequency matrices -> CNN / SVM classifiers."""

__version__ = "0.1.0"
