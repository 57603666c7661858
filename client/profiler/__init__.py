"""Compute profiling: time training steps per batch size and fit the latency models.

``fit`` fits Assumption 1 (Eq. (27)) and the CPU model (Eq. (9)); ``timing`` measures a
model on cpu or cuda; ``report`` writes the JSON profile and the Fig. 2(b)-style plot.
"""

from client.profiler.fit import CpuFit, GpuFit, fit_cpu, fit_gpu

__all__ = ["CpuFit", "GpuFit", "fit_cpu", "fit_gpu"]
