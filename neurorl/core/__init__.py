"""neurorl.core."""
