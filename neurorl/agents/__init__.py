"""neurorl.agents."""
