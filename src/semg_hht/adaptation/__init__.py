"""Few-shot adaptation to a new person: methods.py (what changes), people.py (support and query rows,
one person adapted), run.py (adapt.py); evaluate.py's adaptation rows use the same pieces."""
