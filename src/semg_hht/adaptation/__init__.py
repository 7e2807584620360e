"""Few-shot adaptation to a new person: methods.py (what changes), people.py (support and query rows,
one person adapted), run.py (adapt.py, with a person's classic side from semg_hht.classic.person); evaluate.py's
adaptation rows use the same pieces."""
