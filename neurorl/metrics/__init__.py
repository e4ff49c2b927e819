"""neurorl.metrics."""
