"""python -m semg_hht.synth: raw synthetic sEMG (semg_hht.synth.raw)."""

from semg_hht.synth.raw import main

main()
