"""siliconbench's harness: planning, measuring, recording and reporting benchmark cells."""

__version__ = "0.1.0"
