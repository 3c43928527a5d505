"""Collect one gpu_check.sh run into ``gpu_check.json``: the machine, the test counts, the examples, the benchmarks.

    python benchmarks/gpu_summary.py OUTDIR [--backend cupy|numpy]

Reads what ``benchmarks/gpu_check.sh`` left in OUTDIR (``junit.xml``, ``examples.tsv``, ``stages.tsv``,
``bench_vae_b128.json``, ``bench_vae_b1024.json``, ``bench_rbm.json``, ``bench_eval.json``, ``ais_spread.json``,
``profile_gpu.json``)
and writes ``OUTDIR/gpu_check.json``. A missing part gives null values and its reason under ``"missing"``; the
script never fails on a partial run, so a run cut short still reports what it measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

KEYS = ["device", "driver", "cuda", "cupy_version", "torch_version", "tests_passed", "tests_failed",
        "tests_skipped", "cupy_tests_passed", "examples_ok", "vae_s_per_epoch_b128", "torch_s_per_epoch_b128",
        "vae_ratio_b128", "vae_s_per_epoch_b1024", "torch_s_per_epoch_b1024", "vae_ratio_b1024", "rbm_s_per_epoch",
        "iw_seconds", "ais_seconds"]


def test_counts(junit: Path) -> dict:
    """passed, failed (failures + errors), skipped, and passed tests run on the cupy backend, from a JUnit XML file."""
    root = ET.parse(junit).getroot()
    passed = failed = skipped = cupy_passed = 0
    failed_names = []
    for case in root.iter("testcase"):
        outcome = {child.tag for child in case}
        name = f"{case.get('classname')}::{case.get('name')}"
        if outcome & {"failure", "error"}:
            failed += 1
            failed_names.append(name)
        elif "skipped" in outcome:
            skipped += 1
        else:
            passed += 1
            if "[" in case.get("name", "") and "cupy" in case.get("name").split("[", 1)[1]:
                cupy_passed += 1
    return {"tests_passed": passed, "tests_failed": failed, "tests_skipped": skipped,
            "cupy_tests_passed": cupy_passed, "failed_tests": failed_names}


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines() if line.strip()]


def machine(backend: str) -> dict:
    """GPU name, driver, CUDA runtime and library versions (None where unavailable)."""
    info = {"device": None, "driver": None, "cuda": None, "cupy_version": None, "torch_version": None}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            name, driver, memory = [s.strip() for s in out.stdout.splitlines()[0].split(",")]
            info.update(device=f"{name} ({memory})", driver=driver)
    except (OSError, subprocess.SubprocessError):
        pass
    if backend == "cupy":
        try:
            import cupy
            info["cupy_version"] = cupy.__version__
            v = cupy.cuda.runtime.runtimeGetVersion()
            info["cuda"] = f"{v // 1000}.{v % 1000 // 10}"
        except Exception as err:  # noqa: BLE001 - a report, whatever went wrong
            info["cupy_error"] = f"{type(err).__name__}: {err}"
    try:
        import torch
        info["torch_version"] = torch.__version__
        if info["cuda"] is None and torch.cuda.is_available():
            info["cuda"] = torch.version.cuda
    except ImportError:
        pass
    if info["device"] is None:
        from common import cpu_name
        info["device"] = f"CPU: {cpu_name()} (rehearsal, no GPU)"
    return info


def summarise(out: Path, backend: str) -> dict:
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "backend": backend, **machine(backend)}
    missing = {}

    def load(name):
        path = out / name
        if not path.exists():
            missing[name] = "not written (stage failed, timed out or skipped: see stages.tsv and its log)"
            return None
        return json.loads(path.read_text())

    result.update({k: None for k in ("tests_passed", "tests_failed", "tests_skipped", "cupy_tests_passed")})
    if (out / "junit.xml").exists():
        result.update(test_counts(out / "junit.xml"))
    else:
        missing["junit.xml"] = "the test stage wrote no report"
    if (out / "examples.tsv").exists():
        rows = read_tsv(out / "examples.tsv")
        result["examples"] = {name: {"rc": int(rc), "seconds": float(s)} for name, rc, s in rows}
        result["examples_ok"] = bool(rows) and all(int(rc) == 0 for _, rc, _ in rows)
    else:
        result["examples_ok"] = None
        missing["examples.tsv"] = "the examples stage did not run"
    for batch in (128, 1024):
        r = load(f"bench_vae_b{batch}.json")
        sec = (r or {}).get("seconds_per_epoch", {})
        result[f"vae_s_per_epoch_b{batch}"] = sec.get("refvae")
        result[f"torch_s_per_epoch_b{batch}"] = sec.get("torch")
        result[f"vae_ratio_b{batch}"] = (r or {}).get("ratio_refvae_over_torch")
    r = load("bench_rbm.json")
    result["rbm_s_per_epoch"] = (r or {}).get("seconds_per_epoch", {}).get("refvae")
    result["sklearn_cpu_s_per_epoch"] = (r or {}).get("seconds_per_epoch", {}).get("sklearn")
    r = load("bench_eval.json")
    result["iw_seconds"] = (r or {}).get("vae", {}).get("seconds")
    result["ais_seconds"] = (r or {}).get("ais", {}).get("seconds")
    if r and "agreement_with_numpy" in r:
        result["agreement_with_numpy"] = r["agreement_with_numpy"]
    r = load("ais_spread.json")
    if r:
        result["ais_spread"] = {k: r[k] for k in ("chains", "betas", "mean_log_z", "sd_log_z", "standard_error_of_mean",
                                                  "runs_with_infinite_lower_bound")}
        result["ais_spread"]["log_z"] = [run["log_z"] for run in r["runs"]]
    r = load("profile_gpu.json") if backend == "cupy" else None
    if r:
        result["profile"] = {batch: {impl: {k: p[k] for k in ("kernels_per_step", "kernel_seconds",
                                                            "kernel_seconds_by_kind", "gpu_idle_seconds",
                                                            "gpu_busy_fraction", "epoch_seconds_unprofiled")}
                                     for impl, p in rows.items()} for batch, rows in r["profiles"].items()}
    if (out / "stages.tsv").exists():
        result["stages"] = {name: {"rc": int(rc), "seconds": float(s)} for name, rc, s in read_tsv(out / "stages.tsv")}
    if missing:
        result["missing"] = missing
    ordered = {k: result.pop(k, None) for k in KEYS}
    return {**ordered, **result}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--backend", default="cupy")
    args = p.parse_args(argv)
    out = Path(args.outdir)
    result = summarise(out, args.backend)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    width = max(len(k) for k in KEYS)
    for k in KEYS:
        v = result[k]
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    for name in result.get("failed_tests", []):
        print(f"FAILED {name}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
