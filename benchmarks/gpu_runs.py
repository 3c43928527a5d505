"""The GPU check's programs: every command of ``refvae`` once at small size, and every example in ``--quick``.

    python benchmarks/gpu_runs.py commands OUTDIR [--backend cupy] [--jobs 4] [--deadline 40]
    python benchmarks/gpu_runs.py examples OUTDIR [--backend cupy] [--jobs 4] [--deadline 55]

Each program runs in its own process on the chosen backend, ``--jobs`` at a time; a command that reads a
checkpoint waits for the ``train`` that writes it. After each program finishes, ``OUTDIR/commands.json`` (or
``examples.json``) is rewritten atomically: a list of ``{"name", "argv", "status", "rc", "seconds",
"last_error"}``, where status is ``ok``, ``failed``, ``timeout`` or ``not run`` (its training failed, or the
deadline had passed), and ``last_error`` is the last line the program wrote to stderr when it did not succeed.
Each program's output is in ``OUTDIR/<kind>/<name>.log``. The exit status is 0 only when every program succeeded.

``--deadline`` (seconds for the whole stage) is kept a little under the stage's limit in ``gpu_check.sh``, so that a
slow stage still writes its JSON, with the programs it could not run marked ``not run``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                       # refvae from this checkout, as gpu_check.sh runs it
from refvae.checkpoint import atomic_file  # noqa: E402

# (name, arguments after `python -m refvae`, the command whose run folder it reads or None). {out} is the
# stage's folder. Small sizes: the point is that every program runs on the backend, not what it measures.
SMALL = ["--epochs", "1", "--no-progress"]
COMMANDS = [
    ("train_vae", ["train", "vae", *SMALL, "--train-size", "1000", "--test-size", "100", "--hidden", "100",
                   "--z-dim", "8", "--iw-samples", "20", "--out", "{out}/vae"], None),
    ("train_rbm_pcd", ["train", "rbm", *SMALL, "--pcd", "--hidden", "50", "--train-size", "1000", "--test-size",
                       "100", "--ais-chains", "10", "--ais-betas", "200", "--out", "{out}/rbm_pcd"], None),
    ("train_rbm_exact", ["train", "rbm", *SMALL, "--negative-phase", "exact", "--hidden", "8", "--train-size",
                         "1000", "--test-size", "100", "--out", "{out}/rbm_exact"], None),
    ("train_helmholtz_wake_sleep", ["train", "helmholtz", *SMALL, "--dataset", "bars", "--layers", "8,1",
                                    "--algorithm", "wake-sleep", "--out", "{out}/hm_ws"], None),
    ("train_helmholtz_rws", ["train", "helmholtz", *SMALL, "--dataset", "bars", "--layers", "8,1",
                             "--algorithm", "rws", "--k", "5", "--out", "{out}/hm_rws"], None),
    ("train_helmholtz_exact", ["train", "helmholtz", *SMALL, "--dataset", "bars", "--layers", "8,1",
                               "--algorithm", "exact", "--out", "{out}/hm_exact"], None),
    ("gradcheck", ["gradcheck"], None),
    ("sample_vae_prior", ["sample", "{out}/vae/checkpoint.npz", "--source", "prior", "--n", "16",
                          "--out", "{out}/samples/vae_prior.png"], "train_vae"),
    ("sample_vae_aggregate", ["sample", "{out}/vae/checkpoint.npz", "--source", "aggregate", "--n", "16",
                              "--out", "{out}/samples/vae_aggregate.png"], "train_vae"),
    ("sample_vae_aggregate_full", ["sample", "{out}/vae/checkpoint.npz", "--source", "aggregate-full", "--n", "16",
                                   "--out", "{out}/samples/vae_aggregate_full.png"], "train_vae"),
    ("sample_vae_aggregate_mixture", ["sample", "{out}/vae/checkpoint.npz", "--source", "aggregate-mixture",
                                      "--n", "16", "--out", "{out}/samples/vae_aggregate_mixture.npy"], "train_vae"),
    ("sample_rbm", ["sample", "{out}/rbm_pcd/checkpoint.npz", "--n", "16", "--gibbs-steps", "20", "--binary",
                    "--out", "{out}/samples/rbm.png"], "train_rbm_pcd"),
    ("sample_helmholtz", ["sample", "{out}/hm_ws/checkpoint.npz", "--n", "16", "--out", "{out}/samples/hm.png"],
     "train_helmholtz_wake_sleep"),
    ("evaluate_vae", ["evaluate", "{out}/vae/checkpoint.npz", "--test-size", "100", "--iw-samples", "20",
                      "--no-progress", "--json", "{out}/evaluate_vae.json"], "train_vae"),
    ("evaluate_rbm", ["evaluate", "{out}/rbm_pcd/checkpoint.npz", "--test-size", "100", "--ais-chains", "10",
                      "--ais-betas", "200", "--no-progress", "--json", "{out}/evaluate_rbm.json"], "train_rbm_pcd"),
    ("evaluate_helmholtz", ["evaluate", "{out}/hm_rws/checkpoint.npz", "--iw-samples", "20", "--no-progress",
                            "--json", "{out}/evaluate_hm.json"], "train_helmholtz_rws"),
    ("diagnose_vae", ["diagnose", "{out}/vae/checkpoint.npz", "--size", "500", "--out", "{out}/diagnose_vae"],
     "train_vae"),
]


def command_runs(out: Path, backend: str, python: str) -> list[dict]:
    """The commands as runs: name, argv (with the backend), and the run whose checkpoint each needs."""
    runs = []
    for name, args, needs in COMMANDS:
        argv = [python, "-m", "refvae", *[a.format(out=out) for a in args], "--backend", backend]
        runs.append({"name": name, "argv": argv, "needs": needs})
    return runs


def example_runs(out: Path, backend: str, python: str) -> list[dict]:
    """Every examples/*.py with --quick (and --out inside OUTDIR where the example writes files)."""
    runs = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        argv = [python, str(path), "--quick", "--backend", backend]
        if '"--out"' in path.read_text():
            argv += ["--out", str(out / path.stem)]
        runs.append({"name": path.stem, "argv": argv, "needs": None})
    return runs


def last_line(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else None


def run_one(run: dict, log: Path, limit_s: float) -> dict:
    """Run one program with a time limit; its status, exit code, seconds and (if it failed) last stderr line."""
    t0 = time.perf_counter()
    try:
        done = subprocess.run(run["argv"], capture_output=True, text=True, timeout=limit_s, cwd=ROOT)
        rc, stdout, stderr = done.returncode, done.stdout, done.stderr
        status = "ok" if rc == 0 else "failed"
        error = None if rc == 0 else (last_line(stderr) or last_line(stdout) or f"exit status {rc}")
    except subprocess.TimeoutExpired as err:
        rc, status, error = None, "timeout", f"timed out after {limit_s:.0f} s"
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
    seconds = round(time.perf_counter() - t0, 1)
    log.write_text(f"$ {' '.join(run['argv'])}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
    return {"name": run["name"], "argv": run["argv"][1:], "status": status, "rc": rc, "seconds": seconds,
            "last_error": error}


def write_json(path: Path, rows: list[dict]) -> None:
    with atomic_file(path) as f:                    # refvae's one atomic writer: a stopped stage leaves no half file
        f.write(json.dumps(rows, indent=1).encode("utf-8"))


def run_all(runs: list[dict], out: Path, kind: str, jobs: int, deadline_s: float) -> list[dict]:
    """Run ``runs`` ``jobs`` at a time, each after the run it needs; rewrite OUTDIR/<kind>.json after each."""
    logs = out / kind
    logs.mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + deadline_s
    results = {r["name"]: None for r in runs}
    finished = {r["name"]: threading.Event() for r in runs}
    lock = threading.Lock()

    def job(run):
        needs = run["needs"]
        if needs is not None:
            finished[needs].wait()
        left = end - time.monotonic()
        if needs is not None and results[needs]["status"] != "ok":
            row = {"name": run["name"], "argv": run["argv"][1:], "status": "not run", "rc": None, "seconds": 0.0,
                   "last_error": f"needs {needs}, which did not succeed"}
        elif left < 1:
            row = {"name": run["name"], "argv": run["argv"][1:], "status": "not run", "rc": None, "seconds": 0.0,
                   "last_error": f"the stage's deadline of {deadline_s:.0f} s had passed"}
        else:
            row = run_one(run, logs / f"{run['name']}.log", left)
        with lock:
            results[run["name"]] = row
            write_json(out / f"{kind}.json", [r for r in results.values() if r is not None])
        finished[run["name"]].set()
        print(f"{row['status']:>8}  {row['seconds']:6.1f} s  {row['name']}"
              + (f"  ({row['last_error']})" if row["last_error"] else ""), flush=True)

    # the runs that others need go first, so that a dependent run never holds a worker while its need waits
    order = sorted(runs, key=lambda r: r["needs"] is not None)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(job, order))
    return list(results.values())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=["commands", "examples"])
    p.add_argument("outdir")
    p.add_argument("--backend", choices=["cupy", "numpy", "strict"], default="cupy")
    p.add_argument("--jobs", type=int, default=4, help="programs at a time (default 4)")
    p.add_argument("--deadline", type=float, default=40.0, help="seconds for all of them (default 40)")
    args = p.parse_args(argv)
    out = Path(args.outdir).resolve()
    make = command_runs if args.kind == "commands" else example_runs
    rows = run_all(make(out, args.backend, sys.executable), out, args.kind, args.jobs, args.deadline)
    bad = [r["name"] for r in rows if r["status"] != "ok"]
    print(f"{len(rows) - len(bad)} of {len(rows)} {args.kind} succeeded" + (f"; not: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
