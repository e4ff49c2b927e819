"""neurorl.experiment."""
