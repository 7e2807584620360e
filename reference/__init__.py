"""The seeds' code kept as oracles (not installed, not used by semg_hht): tests check the package
against them and bench/ times the package against them."""
