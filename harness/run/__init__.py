"""Execution: the plan of cells, the runner, one cell, isolation in a child process."""
