"""Raw sEMG -> Hilbert-Huang time-frequency matrices (.npz): readers, filters, transform, pipeline."""

from semg_hht.hht.transform import hilbert_spectrum

__all__ = ["hilbert_spectrum"]
