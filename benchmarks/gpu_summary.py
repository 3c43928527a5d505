"""Collect one gpu_check.sh run into ``gpu_check.json``: the machine, each stage, command and example, the tests,
the benchmarks.

    python benchmarks/gpu_summary.py OUTDIR [--backend cupy|numpy] [--seconds S]

Reads what ``benchmarks/gpu_check.sh`` left in OUTDIR (``stages.tsv`` and each stage's log, ``junit.xml`` and
``junit_long.xml``, ``commands.json`` and ``examples.json`` from ``gpu_runs.py``, ``bench_vae_b128.json``,
``bench_vae_b1024.json``, ``bench_rbm.json``, ``bench_eval.json``, ``ais_spread.json``, ``profile_gpu.json``) and
writes ``OUTDIR/gpu_check.json``. ``stages``, ``commands`` and ``examples`` are lists of ``{"name", "status",
"seconds", "last_error", ...}`` (status ``ok``, ``failed``, ``timeout`` or ``not run``); the names of those that did
not succeed are also in ``stages_failed``, ``commands_failed`` and ``examples_failed``. A missing part gives null
values and its reason under ``"missing"``; the script never fails on a partial run, so a run cut short still
reports what it measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

KEYS = ["device", "driver", "cuda", "cupy_version", "torch_version", "seconds_total", "stages_failed",
        "tests_passed", "tests_failed", "tests_skipped", "cupy_tests_passed", "commands_failed", "examples_failed",
        "vae_s_per_epoch_b128", "torch_s_per_epoch_b128",
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


ERROR_WORDS = ("Error", "error", "FAILED", "Traceback", "refused", "Killed")


def last_error(log: Path) -> str | None:
    """The last line of a log that names an error (else its last non-empty line), at most 300 characters."""
    if not log.exists():
        return None
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    named = [line for line in lines if any(w in line for w in ERROR_WORDS)]
    pick = named or lines
    return pick[-1][:300] if pick else None


def stage_rows(out: Path) -> list[dict]:
    """stages.tsv (name, exit status, seconds, limit) as rows with a status and, if it failed, its last error."""
    rows = []
    for fields in read_tsv(out / "stages.tsv"):
        name, rc, seconds = fields[0], int(fields[1]), float(fields[2])
        limit = float(fields[3]) if len(fields) > 3 else None
        status = "ok" if rc == 0 else "timeout" if rc in (124, 137) else "failed"
        error = None if rc == 0 else (f"stopped at its limit of {limit:.0f} s; " if status == "timeout" and limit
                                      else "") + (last_error(out / f"{name}.log") or f"exit status {rc}")
        rows.append({"name": name, "status": status, "rc": rc, "seconds": seconds, "limit_s": limit,
                     "last_error": error})
    return rows


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


def summarise(out: Path, backend: str, seconds: float | None = None) -> dict:
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "backend": backend, **machine(backend)}
    missing = {}

    def load(name):
        path = out / name
        if not path.exists():
            missing[name] = "not written (stage failed, timed out or skipped: see stages.tsv and its log)"
            return None
        return json.loads(path.read_text())

    result.update({k: None for k in ("tests_passed", "tests_failed", "tests_skipped", "cupy_tests_passed")})
    reports = [out / name for name in ("junit.xml", "junit_long.xml") if (out / name).exists()]
    if reports:
        counts = [test_counts(path) for path in reports]
        result.update({k: sum(c[k] for c in counts) for k in counts[0] if k != "failed_tests"})
        result["failed_tests"] = [name for c in counts for name in c["failed_tests"]]
    else:
        missing["junit.xml"] = "the test stages wrote no report"
    for kind in ("commands", "examples"):
        rows = load(f"{kind}.json")
        result[kind] = rows
        result[f"{kind}_failed"] = None if rows is None else [r["name"] for r in rows if r["status"] != "ok"]
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
        result["stages"] = stage_rows(out)
        result["stages_failed"] = [r["name"] for r in result["stages"] if r["status"] != "ok"]
    else:
        missing["stages.tsv"] = "gpu_check.sh recorded no stage"
    result["seconds_total"] = seconds
    if missing:
        result["missing"] = missing
    ordered = {k: result.pop(k, None) for k in KEYS}
    return {**ordered, **result}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--backend", default="cupy")
    p.add_argument("--seconds", type=float, default=None, help="the whole check's wall-clock seconds so far")
    args = p.parse_args(argv)
    out = Path(args.outdir)
    result = summarise(out, args.backend, args.seconds)
    from common import write_result                 # atomic, as every benchmark result
    write_result(result, "gpu_check", args.backend, path=out / "gpu_check.json")
    width = max(len(k) for k in KEYS)
    for k in KEYS:
        v = result[k]
        print(f"{k:<{width}}  {v:.4g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    for name in result.get("failed_tests", []):
        print(f"FAILED {name}")
    for kind in ("stages", "commands", "examples"):
        for row in result.get(kind) or []:
            if row["status"] != "ok":
                print(f"{kind[:-1]} {row['name']}: {row['status']}: {row['last_error']}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
