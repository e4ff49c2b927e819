"""neurorl.plasticity."""
