"""neurorl.envs."""
