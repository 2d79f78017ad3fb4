"""Run files in other tools' formats (pytest-benchmark JSON)."""
