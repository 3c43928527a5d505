"""Every example runs in --quick mode (seconds) on the strict backend and writes what it promises."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import refvae
from refvae.features import load_classifier

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args, timeout=600, cwd=ROOT):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick", "--backend", "strict", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


def test_train_vae_quick():
    stdout = _run("train_vae.py")
    assert "importance-weighted log-likelihood" in stdout and "epoch  1" in stdout


def test_prior_alignment_quick(tmp_path):
    stdout = _run("prior_alignment.py", "--out", str(tmp_path))
    summary = (tmp_path / "summary.md").read_text()
    assert "Paired differences" in summary and "align='init'" in summary and "align='epoch'" in summary
    assert (tmp_path / "prior_alignment.png").stat().st_size > 1000
    assert "seed 1" in stdout


def test_aggregate_vs_prior_quick(tmp_path):
    _run("aggregate_vs_prior.py", "--out", str(tmp_path))
    summary = (tmp_path / "summary.md").read_text()
    for run in ["baseline", "small decoder", "small latent", "large lr"]:
        assert f"| {run} |" in summary
    for name in ["mismatch_per_epoch.png", "active_units.png", "aggregate_baseline.png"]:
        assert (tmp_path / name).stat().st_size > 1000


def test_train_rbm_quick():
    stdout = _run("train_rbm.py")
    assert "test log-likelihood" in stdout and ", exact)" in stdout   # 12 hidden units: exact log Z
    assert "aggregate posterior mean" in stdout and "model marginal mean" in stdout


def test_rbm_adaptive_prior_quick(tmp_path):
    _run("rbm_adaptive_prior.py", "--out", str(tmp_path))
    summary = (tmp_path / "summary.md").read_text()
    assert "fixed − adaptive" in summary and "sparse 0.1 − adaptive" in summary
    for name in ("CD-1", "CD-10", "PCD-1", "CD-10, fixed prior"):
        assert f"| {name} |" in summary


@pytest.mark.long
def test_wake_sleep_bars_quick(tmp_path):
    stdout = _run("wake_sleep_bars.py", "--out", str(tmp_path))
    summary = (tmp_path / "summary.md").read_text()
    for arm in ("wake-sleep, gradient prior", "wake-sleep, moment prior", "RWS k=5, gradient prior",
                "RWS k=5, moment prior", "exact ML, gradient prior", "exact ML, moment prior"):
        assert f"| {arm} |" in summary
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert all(len(r["kl"]) == 2 and r["kl"][-1] > 0 for runs in results.values() for r in runs)
    assert (tmp_path / "kl_curves.png").stat().st_size > 1000 and "seed 1" in stdout


def test_compare_models_quick(tmp_path):
    _run("compare_models.py", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "results.json").read_text())
    assert len(rows) == 3 and all(r["log_likelihood"] < 0 and r["estimator"] for r in rows.values())
    summary = (tmp_path / "summary.md").read_text()
    assert "AIS" in summary and "importance-weighted" in summary


@pytest.mark.long
def test_linear_vae_quick(tmp_path):
    stdout = _run("linear_vae.py", "--out", str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    linear, nonlinear = results["linear"], results["nonlinear"]
    assert "synthetic, pPCA" in linear and "mnist-10k, pPCA" in linear
    for r in linear.values():
        assert r["gap"] >= -1e-6                                    # the ELBO never exceeds the maximum
        parts = r["gap_decoder"] + r["gap_posterior_shape"] + r["gap_encoder"]
        assert abs(parts - r["gap"]) < 1e-8 and min(r["gap_decoder"], r["gap_posterior_shape"], r["gap_encoder"]) > -1e-8
    assert [c["epoch"] for c in next(iter(nonlinear.values()))["checkpoints"]] == [1, 2]
    for name in ("elbo_curves.png", "directions.png", "contrast.png", "aggregate_nonlinear_mnist-10k.png", "summary.md"):
        assert (tmp_path / name).stat().st_size > 500
    assert "## The contrast" in (tmp_path / "summary.md").read_text()
    assert "max log-likelihood" in stdout


def test_bars_found_recognises_the_one_unit_per_bar_solution(numpy_backend):
    """The bars example's criterion: a machine whose 8 units each switch on one bar's pixels passes; with two units
    on the same bar, or a unit on a mixed set of pixels, it fails."""
    import importlib

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        bars = importlib.import_module("wake_sleep_bars")
    finally:
        sys.path.pop(0)
    from wakesleep import HelmholtzMachine

    model = HelmholtzMachine((16, 8, 1), dtype="float64")
    W = np.full((8, 16), -1.0)
    for j in range(4):
        W[j, 4 * j:4 * j + 4] = 6.0                      # units 0-3: the rows (horizontal bars)
        W[4 + j, j::4] = 6.0                             # units 4-7: the columns (vertical bars)
    params = dict(model.params)
    params["gen.1.W"], params["gen.1.b"] = W, np.full(16, -3.0)
    model.set_params(params)
    assert bars.bars_found(model, numpy_backend)
    W2 = W.copy()
    W2[7] = W[6]                                         # two units on one bar
    model.set_params({**params, "gen.1.W": W2})
    assert not bars.bars_found(model, numpy_backend)
    W3 = W.copy()
    W3[0, [0, 1, 4, 5]], W3[0, [2, 3]] = 6.0, -1.0       # a 2 x 2 block, not a bar
    model.set_params({**params, "gen.1.W": W3})
    assert not bars.bars_found(model, numpy_backend)


def test_rbm_exact_quick(tmp_path):
    _run("rbm_exact.py", "--out", str(tmp_path), "--datasets", "mnist-10k")     # digits need scikit-learn
    results = json.loads((tmp_path / "results.json").read_text())["results"]["mnist-10k"]
    arms = results["arms"]
    assert set(arms) == {"exact, full batch", "exact, full batch, fixed hidden biases", "exact, minibatch", "CD-1",
                         "CD-10", "PCD-1"}
    for runs in arms.values():
        assert all(r["train_log_likelihood"] < 0 and 0 <= r["prior_gap"] < 1 for r in runs)
    curve = results["full_batch_curves"][0]["adaptive"]
    assert curve[-1][1] > curve[0][1]                    # L-BFGS raised the exact log-likelihood
    assert (tmp_path / "exact_training.png").stat().st_size > 500


@pytest.mark.long
def test_aggregate_sampling_quick(tmp_path):
    _run("aggregate_sampling.py", "--out", str(tmp_path))
    saved = json.loads((tmp_path / "results.json").read_text())
    for run, seeds in saved["results"].items():
        row = seeds[0]["epochs"]["2"]
        assert set(row["sources"]) == {"prior", "aggregate", "aggregate-full", "aggregate-mixture",
                                       "reconstructions (training)"}
        assert all(np.isfinite(v["fd_classifier_test"]) and 0 <= v["recall_pca_train"] <= 1 for v in row["sources"].values())
        assert row["kl_mixture"] >= 0 and row["kl_full"] >= 0
        assert (tmp_path / f"samples_{run.replace(' ', '_')}.png").stat().st_size > 1000
    summary = (tmp_path / "summary.md").read_text()
    assert "Does the gain track the mismatch?" in summary and "| aggregate-mixture |" in summary
    assert (tmp_path / "gain_vs_mismatch.png").stat().st_size > 1000


def test_feature_classifier_quick(tmp_path):
    """--quick without --out writes under runs/ of the working directory, never over the shipped classifier."""
    from refvae.features import CLASSIFIER_PATH

    shipped = CLASSIFIER_PATH.read_bytes()
    stdout = _run("feature_classifier.py", cwd=tmp_path)
    assert "test accuracy" in stdout
    assert CLASSIFIER_PATH.read_bytes() == shipped
    with refvae.use_backend("numpy"):
        model = load_classifier(tmp_path / "runs" / "feature_classifier" / "quick.npz")
    assert model.meta["n_test"] == 500 and 0 <= model.meta["test_accuracy"] <= 1


def test_reproduce_rbm_mnist_quick(tmp_path):
    """Every stage of the Salakhutdinov & Murray reproduction on a slice: checkpoints, training and evaluation JSON
    with the exact log Z (the 25-hidden kind, 10 units in --quick), AIS within 1 nat of it, and RAISE below AIS."""
    _run("reproduce_rbm_mnist.py", "all", "--model", "cd1-25", "cd1-500", "--quiet", "--out", str(tmp_path))
    for name in ("cd1-25", "cd1-500"):
        assert (tmp_path / f"{name}.npz").is_file()
        training = json.loads((tmp_path / f"{name}_training.json").read_text())
        assert training["epochs"] == 2 and training["n_train"] == 1000
        ev = json.loads((tmp_path / f"{name}_evaluation.json").read_text())
        assert len(ev["ais"]["runs"]) == 2 and ev["raise"]["images"] == 20
        assert ev["raise"]["mean_log_p"] <= ev["raise"]["ais_log_p_same_images"] + 3 * ev["raise"]["implied_log_z_se"]
    ev = json.loads((tmp_path / "cd1-25_evaluation.json").read_text())
    assert abs(ev["ais"]["mean_log_z"] - ev["exact"]["log_z"]) < 1.0
    assert ev["exact"]["test_log_p"] < 0


def test_reproduce_rbm_mnist_quick_raise_chains(tmp_path):
    """--raise-chains reaches RAISE: the evaluation JSON records the chains per image (2 in --quick)."""
    _run("reproduce_rbm_mnist.py", "all", "--model", "cd1-25", "--quiet", "--out", str(tmp_path))
    ev = json.loads((tmp_path / "cd1-25_evaluation.json").read_text())
    assert ev["raise"]["chains_per_image"] == 2


def test_reproduce_iwae_mnist_quick(tmp_path):
    """The Burda et al. VAE protocol on a slice: checkpoint, JSON with the test curve (one point per pass here),
    the final IW score with its standard error, the paper's number beside it, and the plot."""
    stdout = _run("reproduce_iwae_mnist.py", "--quiet", "--out", str(tmp_path))
    result = json.loads((tmp_path / "vae_k1.json").read_text())
    assert result["passes"] == 2 and [c["passes"] for c in result["curve"]] == [1, 2]
    assert result["paper_test_nll"] == 86.76 and result["k"] == 50 and result["n_test"] == 200
    assert 0 < result["test_nll"] <= -result["test_elbo"] + 1.0 and result["test_nll_se"] > 0
    assert (tmp_path / "vae_k1.npz").is_file() and (tmp_path / "vae_k1_curve.png").stat().st_size > 1000
    assert "the paper: 86.76" in stdout


def test_reproduce_iwae_mnist_refuses_to_replace_a_result(tmp_path):
    """A second run into the same --out stops at once with one line (before training) unless --force is given."""
    (tmp_path / "vae_k1.json").write_text("{}")
    cmd = [sys.executable, str(ROOT / "examples" / "reproduce_iwae_mnist.py"), "--quick", "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "vae_k1.json exists: pass --force" in out.stderr.strip().splitlines()[-1]
    assert (tmp_path / "vae_k1.json").read_text() == "{}"
    _run("reproduce_iwae_mnist.py", "--quiet", "--force", "--out", str(tmp_path))
    assert json.loads((tmp_path / "vae_k1.json").read_text())["passes"] == 2

def test_iwae_schedule_is_the_papers():
    """3^i passes at 1e-3 * 10^(-i/7), i = 0..7: 3,280 passes, stage ends 1, 4, 13, ..."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import reproduce_iwae_mnist as iw
    finally:
        sys.path.remove(str(ROOT / "examples"))
    assert iw.stage_ends(10**6) == [1, 4, 13, 40, 121, 364, 1093, 3280]
    assert [iw.stage_of_pass(p) for p in (0, 1, 3, 4, 12, 13, 3279)] == [0, 1, 1, 2, 2, 3, 7]
    assert iw.learning_rate(0) == pytest.approx(1e-3) and iw.learning_rate(3279) == pytest.approx(1e-4)


@pytest.mark.long
def test_wake_sleep_bars_paper_procedure_quick(tmp_path):
    """--paper-procedure: batch 1, no momentum, a constant rate, visible biases at the data's log-odds, wake-sleep
    only; seeds in parallel processes give the same numbers as one after another."""
    _run("wake_sleep_bars.py", "--paper-procedure", "--seeds", "2", "--jobs", "2", "--out", str(tmp_path / "a"))
    _run("wake_sleep_bars.py", "--paper-procedure", "--seeds", "2", "--out", str(tmp_path / "b"))
    summary = (tmp_path / "a" / "summary.md").read_text()
    assert "paper's procedure" in summary and "batch 1" in summary and "momentum 0" in summary
    assert "constant" in summary and "log-odds" in summary
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("a", "b"))
    assert list(a["results"]) == ["wake-sleep, gradient prior"]
    assert a["settings"]["batch_size"] == 1 and a["settings"]["momentum"] == 0.0
    assert [r["kl"] for r in a["results"]["wake-sleep, gradient prior"]] == \
        [r["kl"] for r in b["results"]["wake-sleep, gradient prior"]]


def test_reproduce_iwae_mnist_quick_trains_the_iwae(tmp_path):
    """--iwae K trains on L_K: its own checkpoint (objective 'iwae' in the config) and the paper's IWAE number."""
    _run("reproduce_iwae_mnist.py", "--iwae", "5", "--quiet", "--out", str(tmp_path))
    result = json.loads((tmp_path / "iwae_k5.json").read_text())
    assert result["paper_test_nll"] == 85.54 and result["row"].startswith("IWAE k=5")
    model = refvae.GaussianVAE.load(tmp_path / "iwae_k5.npz")
    assert model.objective == "iwae" and model.iwae_k == 5


def test_iwae_glorot_init_and_output_bias(numpy_backend):
    """Weights uniform within +-sqrt(6 / (fan_in + fan_out)), hidden biases 0, the decoder's output biases at the
    log-odds of the mean training pixel (clipped at 1e-3)."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import reproduce_iwae_mnist as iw
    finally:
        sys.path.remove(str(ROOT / "examples"))
    model = refvae.GaussianVAE(784, 50, hidden=(200, 200), activation="tanh", seed=0)
    mean = np.linspace(0.0, 1.0, 784)
    iw.glorot_init(model, mean)
    W = np.asarray(model.params["encoder.0.W"])
    limit = np.sqrt(6.0 / (784 + 200))
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.9 * limit
    assert not np.any(np.asarray(model.params["encoder.0.b"]))
    b = np.asarray(model.params["decoder.logits.b"], dtype=np.float64)
    np.testing.assert_allclose(1 / (1 + np.exp(-b)), np.clip(mean, 1e-3, 1 - 1e-3), rtol=1e-5)
