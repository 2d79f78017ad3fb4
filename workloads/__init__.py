"""Model workloads: architectures built from code with random weights, and their inputs."""

from workloads.base import Workload, WorkloadFactory, WorkloadFamily

__all__ = ["Workload", "WorkloadFactory", "WorkloadFamily"]
