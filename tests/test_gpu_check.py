"""The GPU check's parts that run anywhere: its shell syntax, the summary of a run, the trace summary of the GPU
profile, and the backend-agreement test of the evaluation benchmark."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_eval  # noqa: E402 - benchmarks/ is on the path only now
import gpu_summary  # noqa: E402
import profile_gpu  # noqa: E402

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="5">
<testcase classname="tests.test_a" name="test_x[numpy]"/>
<testcase classname="tests.test_a" name="test_x[cupy]"/>
<testcase classname="tests.test_a" name="test_y[cupy-float64]"><failure message="boom"/></testcase>
<testcase classname="tests.test_a" name="test_z[strict]"><skipped message="no"/></testcase>
<testcase classname="tests.test_b" name="test_cupy_free"/>
</testsuite></testsuites>"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_gpu_check_script_parses():
    out = subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_gpu_check_refuses_unknown_options(tmp_path):
    out = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), str(tmp_path), "--bogus"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "unknown option --bogus" in out.stderr


def test_summary_counts_tests_and_reads_benchmarks(tmp_path):
    (tmp_path / "junit.xml").write_text(JUNIT)
    (tmp_path / "junit_long.xml").write_text(JUNIT)
    (tmp_path / "examples.json").write_text(json.dumps([{"name": "train_vae", "status": "ok", "seconds": 3.5,
                                                         "last_error": None}]))
    (tmp_path / "bench_vae_b128.json").write_text(json.dumps(
        {"seconds_per_epoch": {"refvae": 0.2, "torch": 0.25}, "ratio_refvae_over_torch": 0.8}))
    (tmp_path / "bench_eval.json").write_text(json.dumps({"vae": {"seconds": 1.5}, "ais": {"seconds": 2.5}}))
    r = gpu_summary.summarise(tmp_path, "numpy", seconds=12.0)
    assert list(r)[:len(gpu_summary.KEYS)] == gpu_summary.KEYS
    # both JUnit reports (tests and tests_long) are counted
    assert (r["tests_passed"], r["tests_failed"], r["tests_skipped"], r["cupy_tests_passed"]) == (6, 2, 2, 2)
    assert r["failed_tests"] == ["tests.test_a::test_y[cupy-float64]"] * 2
    assert r["examples_failed"] == [] and r["examples"][0]["name"] == "train_vae"
    assert r["commands_failed"] is None and "commands.json" in r["missing"]
    assert (r["vae_s_per_epoch_b128"], r["torch_s_per_epoch_b128"], r["vae_ratio_b128"]) == (0.2, 0.25, 0.8)
    assert r["vae_s_per_epoch_b1024"] is None and "bench_vae_b1024.json" in r["missing"]
    assert (r["iw_seconds"], r["ais_seconds"], r["seconds_total"]) == (1.5, 2.5, 12.0)


def test_summary_names_each_failed_stage_command_and_example_with_its_last_error(tmp_path):
    (tmp_path / "stages.tsv").write_text("tests\t0\t50.1\t60\ncommands\t1\t20.0\t35\nexamples\t124\t55.0\t55\n")
    (tmp_path / "commands.log").write_text("ok train_vae\nValueError: bad thing\n1 of 2 commands succeeded\n")
    (tmp_path / "examples.log").write_text("ok  linear_vae\n")
    (tmp_path / "commands.json").write_text(json.dumps([
        {"name": "train_vae", "status": "ok", "seconds": 3.0, "last_error": None},
        {"name": "sample_vae_prior", "status": "failed", "seconds": 1.0, "last_error": "TypeError: x"}]))
    (tmp_path / "examples.json").write_text(json.dumps([
        {"name": "linear_vae", "status": "ok", "seconds": 9.0, "last_error": None},
        {"name": "rbm_exact", "status": "not run", "seconds": 0.0, "last_error": "deadline"}]))
    r = gpu_summary.summarise(tmp_path, "numpy")
    stages = {row["name"]: row for row in r["stages"]}
    assert [row["name"] for row in r["stages"]] == ["tests", "commands", "examples"]
    assert stages["tests"] == {"name": "tests", "status": "ok", "rc": 0, "seconds": 50.1, "limit_s": 60.0,
                               "last_error": None}
    assert stages["commands"]["status"] == "failed" and stages["commands"]["last_error"] == "ValueError: bad thing"
    assert stages["examples"]["status"] == "timeout"
    assert stages["examples"]["last_error"].startswith("stopped at its limit of 55 s")
    assert r["stages_failed"] == ["commands", "examples"]
    assert r["commands_failed"] == ["sample_vae_prior"] and r["examples_failed"] == ["rbm_exact"]


def _script_limits():
    text = (BENCH / "gpu_check.sh").read_text()
    stages = re.search(r"STAGES_ALL=\(([^)]*)\)", text).group(1).split()
    limits = dict(re.findall(r"\[(\w+)\]=(\d+)", re.search(r"declare -A LIMIT=\(([^)]*)\)", text).group(1)))
    return text, stages, {k: int(v) for k, v in limits.items()}


def test_the_stage_limits_sum_to_five_minutes_and_the_header_states_them():
    text, stages, limits = _script_limits()
    assert set(stages) == set(limits)
    assert sum(limits.values()) <= 300, limits
    for name, limit in limits.items():                       # the header's table says what the script does
        assert re.search(rf"^#   {name}\s+{limit}\s", text, re.M), f"header line for {name} with {limit} s"


def test_the_commands_run_every_program_option_that_chooses_code():
    """Each top-level command that runs array code, each model's training, each Helmholtz algorithm, PCD and the
    exact negative phase of the RBM, and each sample source appear in the GPU check's command list."""
    import argparse

    import gpu_runs
    from refvae.app import install
    from refvae.cli import build_parser

    install("program")                                       # every model's commands, as `refvae` has them

    def sub(parser):
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    def choices(parser, option):
        return next(a for a in parser._actions if option in a.option_strings).choices

    top = sub(build_parser())
    argvs = [args for _, args, _ in gpu_runs.COMMANDS]
    # a command with no --backend runs no array code (refvae pages builds HTML from the source): nothing to check
    on_arrays = {name for name, parser in top.items()
                 if name == "train" or any("--backend" in a.option_strings for a in parser._actions)}
    assert on_arrays == {args[0] for args in argvs} and "pages" not in on_arrays
    trained = {args[1] for args in argvs if args[0] == "train"}
    assert trained == set(sub(top["train"]))
    for algorithm in choices(sub(top["train"])["helmholtz"], "--algorithm"):
        assert any(args[:2] == ["train", "helmholtz"] and algorithm in args for args in argvs), algorithm
    rbm_runs = [args for args in argvs if args[:2] == ["train", "rbm"]]
    assert any("--pcd" in a for a in rbm_runs) and any("exact" in a for a in rbm_runs)
    sources = {args[args.index("--source") + 1] for args in argvs if args[0] == "sample" and "--source" in args}
    assert sources == set(choices(top["sample"], "--source"))
    names = [name for name, _, _ in gpu_runs.COMMANDS]
    assert all(needs is None or needs in names for _, _, needs in gpu_runs.COMMANDS)


def _run(name, code="", sleep=0.0):
    return {"name": name, "argv": [sys.executable, "-c", f"import sys, time; time.sleep({sleep}); {code}"],
            "needs": None}


def test_gpu_runs_reports_failures_timeouts_and_what_could_not_run(tmp_path):
    import gpu_runs

    runs = [_run("good", "print('fine')"), _run("bad", "sys.exit('ValueError: it broke')"),
            {**_run("after_bad"), "needs": "bad"}, _run("slow", sleep=30)]
    rows = {r["name"]: r for r in gpu_runs.run_all(runs, tmp_path, "commands", jobs=4, deadline_s=3)}
    assert rows["good"]["status"] == "ok" and rows["good"]["last_error"] is None
    assert rows["bad"]["status"] == "failed" and rows["bad"]["last_error"] == "ValueError: it broke"
    assert rows["after_bad"]["status"] == "not run" and "needs bad" in rows["after_bad"]["last_error"]
    assert rows["slow"]["status"] == "timeout" and rows["slow"]["seconds"] < 10
    written = json.loads((tmp_path / "commands.json").read_text())
    assert sorted(r["name"] for r in written) == sorted(rows)
    assert "it broke" in (tmp_path / "commands" / "bad.log").read_text()


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
def test_gpu_check_writes_each_attempt_to_a_fresh_folder(tmp_path):
    """Two calls with the same OUTDIR: attempt-1 and attempt-2, each with its own summary (--stages summary only)."""
    env = {**os.environ, "PYTHON": sys.executable}
    for attempt in (1, 2):
        out = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), str(tmp_path), "--backend", "numpy",
                              "--stages", "summary"], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        folder = tmp_path / f"attempt-{attempt}"
        assert out.stdout.strip().splitlines()[-1] == str(folder)
        summary = json.loads((folder / "gpu_check.json").read_text())
        assert summary["backend"] == "numpy" and summary["stages"] == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_gpu_check_refuses_an_unknown_stage(tmp_path):
    out = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), str(tmp_path), "--stages", "tests,bogus"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "unknown stage bogus" in out.stderr and not (tmp_path / "attempt-1").exists()


def test_trace_summary_groups_kernels_and_finds_idle_time():
    trace = {"traceEvents": [
        {"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n", "dur": 300.0},
        {"ph": "X", "cat": "kernel", "name": "cupy_sum", "dur": 50.0},
        {"ph": "X", "cat": "kernel", "name": "refvae_adam_step", "dur": 100.0},
        {"ph": "X", "cat": "kernel", "name": "curand_philox_kernel", "dur": 50.0},
        {"ph": "X", "cat": "cuda_driver", "name": "cuLaunchKernel", "dur": 40.0},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "dur": 999.0},
    ]}
    s = profile_gpu.summarise_trace(trace, steps=2, wall_s=1e-3)
    assert s["kernel_launches"] == 4 and s["kernels_per_step"] == 2
    assert s["kernel_seconds_by_kind"] == pytest.approx({"matrix products": 3e-4, "element-wise": 1e-4,
                                                         "reductions": 5e-5, "random numbers": 5e-5})
    assert s["gpu_idle_seconds"] == pytest.approx(5e-4) and s["gpu_busy_fraction"] == pytest.approx(0.5)
    assert s["launch_api_seconds_profiled"] == pytest.approx(4e-5)


def test_agreement_accepts_noise_and_rejects_a_shift():
    rng = np.random.default_rng(0)
    truth = rng.normal(-100.0, 10.0, size=2000)
    a, b = truth + rng.normal(0, 0.1, 2000), truth + rng.normal(0, 0.1, 2000)
    ais = (400.0, 399.0, 400.2)                                 # se = (e^0.2 - 1)/3
    same = bench_eval.agreement(a, ais, b, (400.1, 399.2, 400.3))
    assert same["iw"]["within_3_se"] and same["ais"]["within_3_se"]
    assert same["ais"]["standard_error_a"] == pytest.approx(math.expm1(0.2) / 3)
    shifted = bench_eval.agreement(a, ais, b + 0.05, (402.0, 401.0, 402.2))
    assert not shifted["iw"]["within_3_se"] and shifted["ais"]["within_3_se"] is False


def test_agreement_leaves_ais_undecided_when_an_error_bar_cannot_be_trusted():
    a = np.zeros(10)
    r = bench_eval.agreement(a, (400.0, -math.inf, 401.3), a, (408.0, 407.0, 408.2))
    assert r["ais"]["error_bars_trustworthy"] is False and r["ais"]["within_3_se"] is None


@pytest.mark.long
def test_bench_eval_compares_backends_on_the_same_models(tmp_path):
    import refvae
    with refvae.use_backend("numpy"):                        # main() sets the backend; restored on exit
        r = bench_eval.main(["--backend", "strict", "--quick", "--compare-numpy", "--json", str(tmp_path / "e.json")])
    agree = r["agreement_with_numpy"]
    assert r["trained_on"] == "numpy" and agree["n_test"] == 100
    # strict draws its numbers on the host: the same model and seed give the same estimates as NumPy
    assert agree["iw"]["mean_difference"] == pytest.approx(0.0, abs=1e-4)
    assert agree["ais"]["difference"] == pytest.approx(0.0, abs=1e-6)


def test_ais_spread_over_seeds(tmp_path):
    import ais_spread
    import refvae
    with refvae.use_backend("numpy"):
        r = ais_spread.main(["--backend", "numpy", "--quick", "--seeds", "0", "1", "2", "--json", str(tmp_path / "a.json")])
    values = [run["log_z"] for run in r["runs"]]
    assert len(values) == 3 and len(set(values)) == 3                 # seeds give different estimates
    assert r["sd_log_z"] == pytest.approx(float(np.std(values, ddof=1)))
    assert r["runs_with_infinite_lower_bound"] == sum(run["lower"] is None for run in r["runs"])


def test_quick_benchmark_results_stay_out_of_the_checkout(tmp_path, monkeypatch):
    """A --quick smoke test writes its JSON to a temporary directory; only full runs write benchmarks/results."""
    import common

    root = BENCH.parent
    assert root not in common.QUICK_RESULTS.resolve().parents
    monkeypatch.setattr(common, "QUICK_RESULTS", tmp_path / "quick")
    path = common.write_result({"a": 1}, "probe", "numpy", quick=True)
    assert path == tmp_path / "quick" / "probe_numpy_quick.json" and json.loads(path.read_text()) == {"a": 1}
    assert not (BENCH / "results" / "probe_numpy_quick.json").exists()
    assert common.write_result({"b": 2}, "probe", "numpy", path=tmp_path / "full.json") == tmp_path / "full.json"

