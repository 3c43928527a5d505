"""The command line: train, evaluate, sample and gradcheck end to end, and its error messages."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import refvae
from refvae.app import main

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["numpy", "strict"])
def trained_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"run-{request.param}")
    with refvae.use_backend("numpy"):  # main() switches backends itself; restore afterwards
        code = main(["train", "vae", "--backend", request.param, "--epochs", "2", "--train-size", "600",
                     "--test-size", "60", "--iw-samples", "8", "--z-dim", "4", "--hidden", "32",
                     "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_train_writes_checkpoint_metrics_report_and_plots(trained_run):
    out = trained_run
    for name in ["checkpoint.npz", "metrics.json", "report.md"]:
        assert (out / name).stat().st_size > 0
    for name in ["curves.png", "samples.png", "reconstructions.png", "latent.png", "posterior.png"]:
        assert (out / name).read_bytes()[:8] == PNG
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert test["n"] == 60 and test["k"] == 8 and test["binarized"]
    assert test["log_likelihood"] > test["elbo"]        # the IW bound is tighter than the ELBO
    assert test["elbo"] == pytest.approx(test["reconstruction"] - test["kl"])
    assert metrics["history"]["epoch"] == [1, 2]
    report = (out / "report.md").read_text()
    assert "importance-weighted (k=8)" in report and "![curves](curves.png)" in report


def test_evaluate_and_sample_read_the_checkpoint(trained_run, tmp_path, capsys):
    with refvae.use_backend("numpy"):
        assert main(["evaluate", str(trained_run / "checkpoint.npz"), "--test-size", "60", "--iw-samples", "8",
                     "--json", str(tmp_path / "e.json"), "--no-progress"]) == 0
        train_metrics = json.loads((trained_run / "metrics.json").read_text())["test"]
        again = json.loads((tmp_path / "e.json").read_text())["test"]
        assert again["elbo"] == pytest.approx(train_metrics["elbo"], rel=1e-5)  # same seeds, same numbers
        assert "test ELBO" in capsys.readouterr().out
        assert main(["sample", str(trained_run / "checkpoint.npz"), "--n", "12", "--out", str(tmp_path / "s.png")]) == 0
        assert (tmp_path / "s.png").read_bytes()[:8] == PNG
        assert main(["sample", str(trained_run / "checkpoint.npz"), "--n", "5", "--binary",
                     "--out", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (5, 784) and set(np.unique(x)) <= {0.0, 1.0}


def test_sample_from_the_aggregate_posterior(trained_run, tmp_path, capsys):
    """--source fits the aggregate posterior on the training images, then draws z from it; a model without
    aggregate sources refuses them in one line."""
    checkpoint = str(trained_run / "checkpoint.npz")
    with refvae.use_backend("numpy"):
        for source in ("aggregate", "aggregate-full", "aggregate-mixture"):
            assert main(["sample", checkpoint, "--n", "6", "--source", source, "--out", str(tmp_path / f"{source}.npy")]) == 0
            assert "fitting the aggregate posterior on 8000 training images of mnist-10k" in capsys.readouterr().out
        model = refvae.load(checkpoint)
        aggregate = refvae.aggregate_posterior(model, refvae.datasets.load("mnist-10k")[0])
        expected = model.sample(6, seed=0, source="aggregate-mixture", aggregate=aggregate)
    np.testing.assert_allclose(np.load(tmp_path / "aggregate-mixture.npy"), expected, rtol=1e-6)
    assert not np.allclose(np.load(tmp_path / "aggregate.npy"), np.load(tmp_path / "aggregate-mixture.npy"))
    rbm_run = tmp_path / "rbm"
    with refvae.use_backend("numpy"):
        assert main(["train", "rbm", "--hidden", "4", "--epochs", "1", "--train-size", "100", "--test-size", "20",
                     "--out", str(rbm_run), "--no-progress"]) == 0
        capsys.readouterr()
        code = main(["sample", str(rbm_run / "checkpoint.npz"), "--source", "aggregate", "--out", str(tmp_path / "r.png")])
    err = capsys.readouterr().err
    assert code == 2 and "--source aggregate is not offered for BernoulliRBM checkpoints: choose prior" in err
    assert len(err.strip().splitlines()) == 1


def test_resume_from_the_command_line(tmp_path):
    args = ["train", "vae", "--epochs", "1", "--train-size", "300", "--test-size", "30", "--iw-samples", "2",
            "--z-dim", "2", "--hidden", "16", "--out", str(tmp_path), "--no-progress"]
    with refvae.use_backend("numpy"):
        assert main(args) == 0
        args[3] = "2"
        assert main(args + ["--resume"]) == 0
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert history["epoch"] == [1, 2]


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "no/such/checkpoint.npz"], "no checkpoint at"),
    (["train", "vae", "--dataset", "cifar", "--epochs", "1", "--no-progress"], "unknown dataset"),
    (["train", "vae", "--batch-size", "0", "--epochs", "1", "--train-size", "10", "--test-size", "5",
      "--no-progress"], "argument --batch-size: must be an integer of at least 1"),
    (["train", "rbm", "--hidden", "30", "--negative-phase", "exact", "--epochs", "1", "--no-progress"],
     "--negative-phase exact enumerates the smaller layer, here 30 units: at most 20"),
    (["train", "helmholtz", "--dataset", "hinton-bars", "--layers", "8,1", "--algorithm", "exact", "--k", "5",
      "--epochs", "1", "--no-progress"], "--k 5 samples per example is reweighted wake-sleep: use --algorithm rws"),
    (["train", "helmholtz", "--dataset", "hinton-bars", "--layers", "8,1", "--rbm-hidden", "4", "--epochs", "1",
      "--no-progress"], "--rbm-hidden 4 sets the size of the RBM prior: it needs --prior rbm"),
])
def test_errors_are_one_clear_line(argv, message, tmp_path, capsys):
    with refvae.use_backend("numpy"):
        try:
            code = main(argv + (["--out", str(tmp_path)] if argv[0] == "train" else []))
        except SystemExit as refused:        # refused by the option parser, before any work
            code = refused.code
    err = capsys.readouterr().err
    assert code == 2 and message.lower() in err.lower() and "Traceback" not in err


def test_gradcheck_command_passes_on_strict():
    out = subprocess.run([sys.executable, "-m", "refvae", "gradcheck", "--backend", "strict"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all gradient checks passed" in out.stdout
    assert out.stdout.count("GaussianVAE(") >= 4


def test_diagnose_reports_and_plots(trained_run, tmp_path, capsys):
    with refvae.use_backend("numpy"):
        code = main(["diagnose", str(trained_run / "checkpoint.npz"), "--size", "300", "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Aggregate posterior vs prior N(0, I) over 300 examples" in printed and "total KL" in printed
    for name in ["aggregate_vs_prior.png", "aggregate_histograms.png", "correlation.png", "mismatch_history.png"]:
        assert (tmp_path / name).read_bytes()[:8] == PNG
    report = json.loads((tmp_path / "diagnose.json").read_text())
    assert report["n"] == 300 and len(report["kl"]) == 4 and report["findings"]
    assert report["kl_diag"] == pytest.approx(sum(report["kl"]))


@pytest.mark.parametrize("hidden, method", [("12", "exact"), ("40", "AIS")])
def test_train_and_evaluate_rbm(hidden, method, tmp_path, capsys):
    with refvae.use_backend("numpy"):
        assert main(["train", "rbm", "--hidden", hidden, "--epochs", "1", "--train-size", "300", "--test-size", "50",
                     "--ais-betas", "200", "--ais-chains", "20", "--pcd", "--out", str(tmp_path), "--no-progress"]) == 0
        metrics = json.loads((tmp_path / "metrics.json").read_text())["test"]
        assert metrics["method"].startswith(method) and metrics["log_likelihood"] < 0
        if method == "AIS":
            lo, hi = metrics["log_likelihood_bounds"]
            assert lo <= metrics["log_likelihood"] <= hi
        for name in ["curves.png", "filters.png", "samples.png", "hidden_frequencies.png"]:
            assert (tmp_path / name).read_bytes()[:8] == PNG
        capsys.readouterr()
        assert main(["evaluate", str(tmp_path / "checkpoint.npz"), "--test-size", "50", "--ais-betas", "200"]) == 0
        assert "test log-likelihood" in capsys.readouterr().out


def test_version_prints_one_line(capsys):
    import refvae

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"refvae {refvae.__version__}"


@pytest.mark.parametrize("argv, target, message", [
    (["evaluate", "{ckpt}", "--test-size", "50", "--iw-samples", "2", "--json", "{ckpt}"], "checkpoint.npz",
     "is this command's input"),
    (["evaluate", "{ckpt}", "--test-size", "50", "--iw-samples", "2", "--json", "{run}/metrics.json"],
     "metrics.json", "is a file of the training run"),
    (["sample", "{ckpt}", "--n", "4", "--out", "{run}/samples.png"], "samples.png", "is a file of the training run"),
    (["sample", "{ckpt}", "--n", "4", "--out", "{ckpt}"], "checkpoint.npz", "is this command's input"),
])
def test_no_command_writes_over_its_input_or_a_runs_files(trained_run, argv, target, message, capsys):
    """The refusal comes before any work, in one line, and the file is left byte for byte as it was."""
    ckpt = trained_run / "checkpoint.npz"
    argv = [a.format(ckpt=ckpt, run=trained_run) for a in argv]
    before = (trained_run / target).read_bytes()
    with refvae.use_backend("numpy"):
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (trained_run / target).read_bytes() == before


def test_new_output_files_beside_a_run_are_allowed(trained_run, capsys):
    out = trained_run / "more_samples.npy"
    try:
        with refvae.use_backend("numpy"):
            assert main(["sample", str(trained_run / "checkpoint.npz"), "--n", "3", "--out", str(out)]) == 0
        assert np.load(out).shape == (3, 784)
    finally:
        out.unlink(missing_ok=True)


def test_sample_to_npy_on_a_full_disk_leaves_no_partial_file(trained_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "s.npy"

    def full_disk(f, x, *args, **kwargs):
        f.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    with refvae.use_backend("numpy"):
        code = main(["sample", str(trained_run / "checkpoint.npz"), "--n", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "no space left" in err.lower() and "Traceback" not in err
    assert f"cannot write {out}" in err and "choose another --out" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
