from semg_hht.svm.fit import fit_svm

__all__ = ["fit_svm"]
