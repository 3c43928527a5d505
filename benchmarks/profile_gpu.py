"""Where a GPU training epoch's time goes: every CUDA kernel recorded, refvae on CuPy beside PyTorch on CUDA.

    python benchmarks/profile_gpu.py [--batch-sizes 128 1024] [--json out.json]

784-400-20 ReLU, Bernoulli likelihood, Adam 1e-3, dynamic binarisation, mnist-10k (as bench_vae.py). For each
batch size and each implementation, one warm-up epoch, one timed epoch (synchronised, not profiled), then one
epoch under ``torch.profiler`` with CUDA activities; refvae's epoch is ``refvae.fit`` without the VAE's
per-epoch diagnostics (``StepsOnly``). The profiler reads CUPTI, which records every kernel the
process launches, CuPy's as well as PyTorch's. From its trace:

* **kernels**: the GPU time of each kernel, grouped as matrix products (cuBLAS/CUTLASS: names with gemm, gemv,
  cutlass, xmma or splitK), reductions (CuPy's ``cupy_sum``-style kernels, PyTorch's ``reduce_kernel``), random
  numbers (curand, philox, ``random``) and element-wise (everything else); with the number of launches per step;
* **GPU idle**: the timed epoch minus the kernels' total. On one stream kernels run one after another, so this is
  the time the GPU waited for the host: Python, the array libraries' dispatch, kernel launches and the one
  device-to-host transfer of the loss per step;
* **launch calls**: the host time inside the CUDA launch API (``cuLaunchKernel``/``cudaLaunchKernel``), as the
  profiler recorded it (the profiler slows the host; read it as a share, not an absolute time).

Without a GPU or PyTorch it says why and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import refvae

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402 - benchmarks/ is on the path only now

KINDS = [("matrix products", re.compile(r"gemm|gemv|cutlass|xmma|splitk|cublas", re.I)),
         ("reductions", re.compile(r"reduce|cupy_(sum|max|min|mean|prod|argmax|argmin|all|any)|_sum_", re.I)),
         ("random numbers", re.compile(r"curand|philox|random|rand", re.I))]


def kind_of_kernel(name: str) -> str:
    """The group of a kernel name: matrix products, reductions, random numbers or element-wise."""
    for kind, pattern in KINDS:
        if pattern.search(name):
            return kind
    return "element-wise"


def summarise_trace(trace: dict, steps: int, wall_s: float) -> dict:
    """Kernel time by kind, launches per step, GPU idle and launch-API time from a Chrome trace of one epoch."""
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X"]
    kernels = [e for e in events if e.get("cat", "").lower() == "kernel"]
    by_kind, top = {}, {}
    for e in kernels:
        k = kind_of_kernel(e["name"])
        by_kind[k] = by_kind.get(k, 0.0) + e["dur"] * 1e-6
        top[e["name"]] = top.get(e["name"], 0.0) + e["dur"] * 1e-6
    launch_api = sum(e["dur"] * 1e-6 for e in events if e.get("cat", "").lower() in ("cuda_runtime", "cuda_driver")
                     and "launch" in e["name"].lower())
    memcpy = sum(e["dur"] * 1e-6 for e in events if e.get("cat", "").lower() in ("gpu_memcpy", "gpu_memset"))
    kernel_s = sum(by_kind.values())
    return {
        "steps": steps, "epoch_seconds_unprofiled": wall_s, "kernel_launches": len(kernels),
        "kernels_per_step": len(kernels) / steps, "kernel_seconds": kernel_s,
        "kernel_seconds_by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
        "memcpy_memset_seconds": memcpy,
        "gpu_idle_seconds": max(wall_s - kernel_s - memcpy, 0.0),
        "gpu_busy_fraction": min((kernel_s + memcpy) / wall_s, 1.0),
        "launch_api_seconds_profiled": launch_api,
        "top_kernels": dict(sorted(top.items(), key=lambda kv: -kv[1])[:12]),
    }


class StepsOnly:
    """A model as ``refvae.fit`` sees it, without its per-epoch diagnostics (the VAE's aggregate-posterior
    mismatch on 1,000 images): the profile then holds the training steps alone, as bench_vae.py's epoch times do."""

    def __init__(self, model):
        self.model, self.params = model, model.params

    last_terms = property(lambda self: self.model.last_terms)

    def loss_and_grads(self, batch, rng=None):
        return self.model.loss_and_grads(batch, rng=rng)


def profile_one(torch, run_epoch, sync, steps) -> dict:
    """Warm up, time one epoch unprofiled, profile one epoch; the trace's summary."""
    from torch.profiler import ProfilerActivity, profile

    run_epoch()
    sync()
    t0 = time.perf_counter()
    run_epoch()
    sync()
    wall = time.perf_counter() - t0
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run_epoch()
        sync()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        trace = json.loads(path.read_text())
    return summarise_trace(trace, steps, wall)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    try:
        import torch
        import torch_vae
        if not torch.cuda.is_available():
            raise RuntimeError("PyTorch sees no CUDA GPU")
        B = refvae.set_backend("cupy")
    except (ImportError, RuntimeError, refvae.BackendError) as err:
        print(f"profile_gpu.py needs CuPy, PyTorch with CUDA and a GPU: {err}")
        return 2
    train, _ = refvae.datasets.load("mnist-10k")
    n = train.shape[0]
    X = B.asarray(train)
    tX = torch.from_numpy(train).to("cuda")
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "cupy": B.xp.__version__,
              "gpu": torch.cuda.get_device_name(), "profiles": {}}
    for batch in args.batch_sizes:
        steps = -(-n // batch)
        model, opt = StepsOnly(refvae.GaussianVAE(784, 20, hidden=(400,), seed=0)), refvae.Adam(1e-3)
        epoch = [0]

        def refvae_epoch():
            epoch[0] += 1
            refvae.fit(model, X, epochs=1, batch_size=batch, optimizer=opt, binarize="dynamic", seed=epoch[0],
                       progress=False)

        tmodel = torch_vae.TorchVAE().to("cuda")
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        gen = torch.Generator(device="cuda").manual_seed(0)
        rows = {"refvae": profile_one(torch, refvae_epoch, B.synchronize, steps),
                "torch": profile_one(torch, lambda: torch_vae.train_epoch(tmodel, topt, tX, batch, gen),
                                     torch.cuda.synchronize, steps)}
        result["profiles"][str(batch)] = rows
        print(f"\nbatch {batch} ({steps} steps per epoch)")
        print("| | epoch (ms) | kernels/step | kernel ms | matrix products | element-wise | reductions | random "
              "| GPU idle (host-bound) | launch API (profiled) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in rows.items():
            ks = r["kernel_seconds_by_kind"]
            print(f"| {name} | {1e3 * r['epoch_seconds_unprofiled']:.1f} | {r['kernels_per_step']:.0f} "
                  f"| {1e3 * r['kernel_seconds']:.1f} | "
                  + " | ".join(f"{1e3 * ks.get(k, 0.0):.1f}" for k in
                               ("matrix products", "element-wise", "reductions", "random numbers"))
                  + f" | {1e3 * r['gpu_idle_seconds']:.1f} ({1 - r['gpu_busy_fraction']:.0%}) "
                  f"| {1e3 * r['launch_api_seconds_profiled']:.1f} |")
    if args.json:
        write_result(result, "profile_gpu", "cupy", path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
