"""The GPU check's parts that run anywhere: its shell syntax, the summary of a run, the trace summary of the GPU
profile, and the backend-agreement test of the evaluation benchmark."""

import json
import math
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
    (tmp_path / "examples.tsv").write_text("train_vae\t0\t3.5\ntrain_rbm\t0\t2.0\n")
    (tmp_path / "bench_vae_b128.json").write_text(json.dumps(
        {"seconds_per_epoch": {"refvae": 0.2, "torch": 0.25}, "ratio_refvae_over_torch": 0.8}))
    (tmp_path / "bench_eval.json").write_text(json.dumps({"vae": {"seconds": 1.5}, "ais": {"seconds": 2.5}}))
    r = gpu_summary.summarise(tmp_path, "numpy")
    assert list(r)[:len(gpu_summary.KEYS)] == gpu_summary.KEYS
    assert (r["tests_passed"], r["tests_failed"], r["tests_skipped"], r["cupy_tests_passed"]) == (3, 1, 1, 1)
    assert r["failed_tests"] == ["tests.test_a::test_y[cupy-float64]"]
    assert r["examples_ok"] is True
    assert (r["vae_s_per_epoch_b128"], r["torch_s_per_epoch_b128"], r["vae_ratio_b128"]) == (0.2, 0.25, 0.8)
    assert r["vae_s_per_epoch_b1024"] is None and "bench_vae_b1024.json" in r["missing"]
    assert (r["iw_seconds"], r["ais_seconds"]) == (1.5, 2.5)


def test_summary_reports_a_failed_example(tmp_path):
    (tmp_path / "examples.tsv").write_text("train_vae\t0\t3.5\ntrain_rbm\t1\t2.0\n")
    r = gpu_summary.summarise(tmp_path, "numpy")
    assert r["examples_ok"] is False and r["tests_passed"] is None and "junit.xml" in r["missing"]


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

