"""neurorl.hardware."""
