"""Shared helpers of the benchmarks: interleaved timing and peak-memory measurement."""
from __future__ import annotations

import gc
import os
import statistics
import time

import torch

import gradreg


def limit_malloc_caching() -> bool:
    """Make glibc return freed large blocks to the OS at once (mmap threshold 64 KiB, no
    dynamic raise), so that RSS tracks the live tensors and peak-RSS deltas mean something.
    (`import gradreg` sets the opposite, for speed.)"""
    return gradreg._mallopt(mmap_threshold=65536, trim_threshold=65536)


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_memory(fn, device: torch.device) -> float | None:
    """Bytes by which fn() raises the peak memory above what was in use before the call:
    CUDA -- torch's allocator peak; CPU -- the process's peak RSS (Linux, reset through
    /proc/self/clear_refs). None where it cannot be measured."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del result
        return float(peak)
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    base = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                       # reset VmHWM to the current RSS
    except OSError:
        return None
    result = fn()
    peak = _status("VmHWM") - base
    del result
    return float(peak)


def time_interleaved(fns: dict, repeats: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per call of each fn, the contenders interleaved round by round (a shared, noisy
    machine then slows them alike); `warmup` rounds are dropped."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    times = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            sync()
            t = time.perf_counter()
            out = fn()
            sync()
            dt = time.perf_counter() - t
            del out
            if r >= warmup:
                times[name].append(dt)
    return times


def median(xs) -> float:
    return statistics.median(xs)


def machine_line(device: torch.device) -> str:
    line = f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
    if device.type == "cuda":
        line += f", {torch.cuda.get_device_name(device)}"
    try:
        load = os.getloadavg()[0]
        line += f", load average {load:.1f} on {os.cpu_count()} cores"
    except OSError:
        pass
    return line
