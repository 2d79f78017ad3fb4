"""sitecustomize for a workflow job's processes: the modules its install did not bring are absent.

Copied by ``tests.workflow_job.JobEnvironment`` into a folder of its own on ``PYTHONPATH``; the
names come from the file ``SILICONBENCH_JOB_BLOCKED`` names.
"""

from __future__ import annotations

import os
import sys
from importlib.abc import MetaPathFinder


class _NotInstalledInTheJob(MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (the workflow job does not install it)")
        return None


_listed = os.environ.get("SILICONBENCH_JOB_BLOCKED")
if _listed:
    with open(_listed, encoding="utf-8") as _handle:
        sys.meta_path.insert(0, _NotInstalledInTheJob(set(_handle.read().split())))
