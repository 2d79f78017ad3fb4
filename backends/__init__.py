"""Backends: how and on what a workload runs (cpu, cuda, neuron, and plug-ins)."""

from backends.base import Availability, Backend, BackendOptions, DeviceTimer, EnergyMeter, PreparedModel

__all__ = ["Availability", "Backend", "BackendOptions", "DeviceTimer", "EnergyMeter", "PreparedModel"]
