"""Execution: a suite in, one run file out.

``suite.run_suite`` is the pipeline every target ends in; ``plan`` turns a suite into cells,
``runner`` orders them, ``strategies`` measure one cell (here, in a child process, on an engine),
``sink`` writes each cell or stops the run, and ``cell`` / ``isolation`` measure a cell itself.
"""
