from semg_hht.models.classifier import HHTClassifier

__all__ = ["HHTClassifier"]
