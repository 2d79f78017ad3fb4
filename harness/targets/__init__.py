"""Targets: where the harness process runs a suite (``local``, or ``aws`` on provisioned instances).

A target takes a validated suite and returns one outcome per place it ran, each pointing at the
run file it produced; reports read those files and never know where they were measured.
"""
