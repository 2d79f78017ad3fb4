"""Measurement: the sampler, its statistics, correctness checks and the environment record."""
