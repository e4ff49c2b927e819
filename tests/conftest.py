"""Strict JAX settings for every test: CPU only, rank promotion raises, neurorl warnings are
errors."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

try:  # pygame before NEST: pygame first imported after NEST 3.10 segfaults in display.init()
    import pygame  # noqa: F401, E402  (neurorl/hardware/pynn.py, _pygame_first)
except ImportError:
    pass

import jax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_numpy_rank_promotion", "raise")
