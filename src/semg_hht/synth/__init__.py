"""Seeded synthetic data, so that every command runs without a download: raw sEMG recordings (raw),
NinaPro-style whole sessions (sessions) and HHT matrices with planted class structure (matrices).

    python -m semg_hht.synth ...           raw recordings (the demo's input; see raw.py)
    python -m semg_hht.synth.sessions ...  whole sessions
    python -m semg_hht.synth.matrices ...  matrices
"""
