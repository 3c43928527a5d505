"""What the benchmark scripts share: the matrix-multiply rate on given shapes, FLOP counts, timing with device
synchronisation, the BLAS thread count, and a record of the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import refvae
from refvae.checkpoint import atomic_file


def flops(shapes) -> int:
    """FLOPs of the matrix products (m, k) @ (k, n) listed as (m, k, n): 2 m k n each."""
    return sum(2 * m * k * n for m, k, n in shapes)


def matmul_rate(B, shapes, dtype="float32", seconds=1.0) -> float:
    """GFLOP/s of B.xp.matmul cycling through the (m, k) @ (k, n) products in ``shapes`` for about ``seconds``."""
    xp, rng = B.xp, B.rng(0)
    mats = [(rng.uniform((m, k), dtype), rng.uniform((k, n), dtype)) for m, k, n in shapes]

    def once():
        for a, b in mats:
            xp.matmul(a, b)

    once()                                                   # warm-up
    B.synchronize()
    t0 = time.perf_counter()
    once()
    B.synchronize()
    reps = max(3, int(seconds / max(time.perf_counter() - t0, 1e-6)))
    t0 = time.perf_counter()
    for _ in range(reps):
        once()
    B.synchronize()
    return flops(shapes) * reps / (time.perf_counter() - t0) / 1e9


def timed(B, fn):
    """(result, seconds) of fn(), the device synchronised before and after."""
    B.synchronize()
    t0 = time.perf_counter()
    out = fn()
    B.synchronize()
    return out, time.perf_counter() - t0


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(B) -> dict:
    """Date, platform, CPU, library versions and BLAS threads (as set now), and the GPU for cupy."""
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "platform": platform.platform(), "cpu": cpu_name(),
            "cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(), "numpy": np.__version__,
            "refvae": refvae.__version__}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [f"{d['internal_api']} {d.get('version')}, {d['num_threads']} threads "
                        f"({Path(d['filepath']).name})" for d in threadpool_info() if d["user_api"] == "blas"]
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    if B.name == "cupy":
        info["cupy"] = B.xp.__version__
        info["gpu"] = B.xp.cuda.runtime.getDeviceProperties(B.xp.cuda.Device().id)["name"].decode()
    return info


def thread_limit(threads):
    """(context, note): a context that sets the BLAS/OpenMP thread count to ``threads`` (threadpoolctl; nothing
    when ``threads`` is None), and a note when it cannot (None otherwise)."""
    if not threads:
        return contextlib.nullcontext(), None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(), "threadpoolctl not installed: thread counts left as they are"
    return threadpool_limits(limits=threads), None


#: Where benchmark results are committed.
RESULTS = Path(__file__).parent / "results"
#: Where ``--quick`` (smoke-test) results go by default: outside the checkout, so a smoke test never changes it.
QUICK_RESULTS = Path(tempfile.gettempdir()) / "refvae-benchmarks"


def write_result(result: dict, name: str, backend: str, quick: bool = False, path=None) -> Path:
    """Write ``result`` as JSON to ``path`` (atomically), by default benchmarks/results/<name>_<backend>.json, or
    for a ``quick`` smoke test QUICK_RESULTS/<name>_<backend>_quick.json (a temporary directory, not the checkout:
    only full runs are results to commit)."""
    default = QUICK_RESULTS / f"{name}_{backend}_quick.json" if quick else RESULTS / f"{name}_{backend}.json"
    out = Path(path or default)
    with atomic_file(out) as f:
        f.write((json.dumps(result, indent=1) + "\n").encode("utf-8"))
    print(f"written {out}")
    return out
