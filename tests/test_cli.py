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
        printed = capsys.readouterr()
        if method == "AIS":      # the time is estimated before AIS starts, with the paper's schedule's beside it
            estimate = [line for line in printed.err.splitlines() if "AIS for log Z" in line]
            assert len(estimate) == 1 and "20 chains x 200 temperatures, about" in estimate[0]
            assert "--ais-betas paper: about" in estimate[0]
        assert main(["evaluate", str(tmp_path / "checkpoint.npz"), "--test-size", "50", "--ais-betas", "200"]) == 0
        assert "test log-likelihood" in capsys.readouterr().out


def test_ais_temperatures_default_to_a_short_schedule_with_the_papers_by_name():
    """``--ais-betas`` defaults to 1000 temperatures (a CPU user's wait), ``paper`` is Salakhutdinov & Murray's
    14500, for ``train rbm`` and ``evaluate`` alike."""
    from refvae.app import install
    from refvae.cli import AIS_DEFAULT_TEMPERATURES, build_parser

    install("program")
    assert AIS_DEFAULT_TEMPERATURES == 1000
    parser = build_parser()
    for command in (["train", "rbm"], ["evaluate", "run/checkpoint.npz"]):
        assert parser.parse_args(command).ais_betas == 1000
        assert parser.parse_args(command + ["--ais-betas", "paper"]).ais_betas == 14500
        assert parser.parse_args(command + ["--ais-betas", "300"]).ais_betas == 300


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


# ------------------------------------------------------------------------------------------------
# your own data (--dataset FILE), and the options a run records in its checkpoint
# ------------------------------------------------------------------------------------------------
from test_datasets import BAD_FILES, OWN, _bad_file, _write_csv  # noqa: E402  (the table of unusable files)

TINY_VAE = ["--z-dim", "2", "--hidden", "8", "--batch-size", "16", "--iw-samples", "2", "--no-progress"]


def _main(argv, capsys):
    """(exit status, stdout, stderr) of ``refvae argv``, refusals by the option parser included."""
    with refvae.use_backend("numpy"):
        try:
            code = main(argv)
        except SystemExit as refused:
            code = refused.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def own_file(tmp_path):
    path = tmp_path / "own.npy"
    np.save(path, OWN)                                        # 40 examples of 6 values: 36 train, 4 held out
    return path


@pytest.mark.parametrize("kind", ["npy", "npz", "csv"])
def test_train_vae_on_a_data_file_and_evaluate_it_without_dataset(kind, tmp_path, capsys):
    """A run on a file of one's own writes its report and plots (6 values per example: not square images), and
    `evaluate CHECKPOINT` with no --dataset evaluates on the same held-out rows, giving the run's own numbers."""
    path = tmp_path / f"own.{kind}"
    {"npy": lambda: np.save(path, OWN), "npz": lambda: np.savez(path, train=OWN[:30], test=OWN[30:], train_labels=np.arange(30) % 3,
                                      test_labels=np.arange(10) % 3),
     "csv": lambda: _write_csv(path, OWN, header="a,b,c,d,e,f")}[kind]()
    run = tmp_path / "run"
    code, out, err = _main(["train", "vae", "--dataset", str(path), "--epochs", "1", "--out", str(run), *TINY_VAE],
                           capsys)
    n_train, n_test = (30, 10) if kind == "npz" else (36, 4)
    assert code == 0, err
    assert f"on {path} ({n_train} train, {n_test} test images)" in out
    for name in ["checkpoint.npz", "metrics.json", "report.md", "curves.png", "samples.png", "latent.png"]:
        assert (run / name).stat().st_size > 0
    trained = json.loads((run / "metrics.json").read_text())["test"]
    code, out, err = _main(["evaluate", str(run / "checkpoint.npz"), "--iw-samples", "2", "--json",
                            str(tmp_path / "e.json"), "--no-progress"], capsys)
    assert code == 0, err
    assert f"on {path.resolve()} ({n_test} test images)" in out
    again = json.loads((tmp_path / "e.json").read_text())["test"]
    assert again["n"] == n_test and again["elbo"] == pytest.approx(trained["elbo"], rel=1e-6)


@pytest.mark.parametrize("model", ["rbm", "helmholtz"])
def test_train_and_evaluate_the_binary_models_on_a_data_file(model, own_file, tmp_path, capsys):
    run = tmp_path / "run"
    options = ["--hidden", "3"] if model == "rbm" else ["--layers", "3,1", "--iw-samples", "2"]
    code, out, err = _main(["train", model, "--dataset", str(own_file), "--epochs", "1", "--out", str(run),
                            "--no-progress", *options], capsys)
    assert code == 0, err
    assert "test log-likelihood" in out and (run / "curves.png").read_bytes()[:8] == PNG
    trained = json.loads((run / "metrics.json").read_text())["test"]
    code, out, err = _main(["evaluate", str(run / "checkpoint.npz"), "--iw-samples", "2", "--json",
                            str(tmp_path / "e.json"), "--no-progress"], capsys)
    assert code == 0, err
    again = json.loads((tmp_path / "e.json").read_text())["test"]
    assert again["n"] == 4 and again["log_likelihood"] == pytest.approx(trained["log_likelihood"], rel=1e-6)


def test_evaluate_a_helmholtz_checkpoint_on_the_dataset_it_was_trained_on(tmp_path, capsys):
    """Without --dataset, evaluate reads the run's (hinton-bars: the exact KL), not mnist-10k's 784 pixels; a
    --dataset of another width is refused in command-line terms."""
    run = tmp_path / "hm"
    code, out, err = _main(["train", "helmholtz", "--layers", "4,1", "--epochs", "1", "--train-size", "200",
                            "--out", str(run), "--no-progress"], capsys)
    assert code == 0, err
    code, out, err = _main(["evaluate", str(run / "checkpoint.npz")], capsys)
    assert code == 0, err
    assert "on hinton-bars" in out and "KL(data || model)" in out
    code, out, err = _main(["evaluate", str(run / "checkpoint.npz"), "--dataset", "mnist-10k"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert ("--dataset mnist-10k has 784 values per example, but the checkpoint's model takes 16: pass the "
            "--dataset it was trained on") in err and "x_dim" not in err


def test_a_checkpoint_that_records_no_dataset_is_evaluated_on_mnist_10k_with_a_note(tmp_path, capsys):
    with refvae.use_backend("numpy"):
        refvae.GaussianVAE(784, 2, hidden=(8,)).save(tmp_path / "plain.npz")
    code, out, err = _main(["evaluate", str(tmp_path / "plain.npz"), "--test-size", "5", "--iw-samples", "2",
                            "--no-progress"], capsys)
    assert code == 0, err
    assert "does not record the dataset it was trained on: using --dataset mnist-10k" in err
    assert "on mnist-10k (5 test images)" in out


def _first_run(own_file, tmp_path, capsys):
    """A one-epoch VAE run on a data file, with options far from the defaults."""
    run = tmp_path / "run"
    argv = ["train", "vae", "--dataset", str(own_file), "--test-fraction", "0.25", "--z-dim", "3", "--hidden", "8,4",
            "--lr", "0.01", "--batch-size", "8", "--seed", "5", "--binarize", "static", "--iw-samples", "2",
            "--no-progress"]
    code, _, err = _main([*argv, "--epochs", "1", "--out", str(run)], capsys)
    assert code == 0, err
    return run, argv


@pytest.mark.long
def test_resume_takes_every_option_from_the_checkpoint(own_file, tmp_path, capsys):
    """`--out RUN --resume --epochs 2` alone continues the run as it was asked for, says where it resumes, and
    ends bit-exactly where the uninterrupted two-epoch run ends."""
    run, argv = _first_run(own_file, tmp_path, capsys)
    meta = refvae.checkpoint.load_checkpoint(run / "checkpoint.npz")[1]
    options = meta["training"]["options"]
    assert options["dataset"] == str(own_file.resolve()) and options["hidden"] == [8, 4]
    assert options["lr"] == 0.01 and options["test_fraction"] == 0.25 and options["epochs"] == 1
    code, out, err = _main(["train", "vae", "--out", str(run), "--resume", "--epochs", "2"], capsys)
    assert code == 0, err
    assert f"resuming {run / 'checkpoint.npz'} at epoch 2 of 2" in out
    assert "(30 train, 10 test images)" in out                # --test-fraction 0.25 of 40 rows, from the checkpoint
    straight = tmp_path / "straight"
    code, _, err = _main([*argv, "--epochs", "2", "--out", str(straight)], capsys)
    assert code == 0, err
    resumed, uninterrupted = (refvae.checkpoint.load_checkpoint(p / "checkpoint.npz")[0] for p in (run, straight))
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)
    code, out, err = _main(["train", "vae", "--out", str(run), "--resume"], capsys)   # --epochs 2, recorded
    assert code == 0, err
    assert "all 2 epochs are done" in out


@pytest.mark.parametrize("option, value, named", [
    ("--lr", "0.5", "--lr=0.01 (this run: 0.5)"),
    ("--z-dim", "4", "--z-dim=3 (this run: 4)"),
    ("--hidden", "8", "--hidden=[8, 4] (this run: [8])"),
    ("--seed", "0", "--seed=5 (this run: 0)"),
    ("--binarize", "dynamic", "--binarize='static' (this run: 'dynamic')"),
    ("--test-fraction", "0.5", "--test-fraction=0.25 (this run: 0.5)"),
    ("--dataset", "bars", "(this run: 'bars')"),
])
def test_resume_refuses_an_option_given_that_differs_from_the_checkpoint(option, value, named, own_file, tmp_path,
                                                                         capsys):
    run, _ = _first_run(own_file, tmp_path, capsys)
    code, out, err = _main(["train", "vae", "--out", str(run), "--resume", "--epochs", "2", option, value], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"cannot resume from {run / 'checkpoint.npz'}: it was trained with" in err and named in err
    assert json.loads((run / "metrics.json").read_text())["history"]["epoch"] == [1]   # nothing trained


def test_resume_accepts_the_same_options_and_new_evaluation_options(own_file, tmp_path, capsys):
    run, argv = _first_run(own_file, tmp_path, capsys)
    code, out, err = _main([*argv, "--iw-samples", "3", "--epochs", "2", "--out", str(run), "--resume"], capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["test"]["k"] == 3


def test_the_aggregate_sources_and_diagnose_read_the_checkpoints_dataset(own_file, tmp_path, capsys):
    run, _ = _first_run(own_file, tmp_path, capsys)
    code, out, err = _main(["sample", str(run / "checkpoint.npz"), "--n", "3", "--source", "aggregate", "--out",
                            str(tmp_path / "s.npy")], capsys)
    assert code == 0, err
    assert f"fitting the aggregate posterior on 30 training images of {own_file.resolve()}" in out
    code, out, err = _main(["diagnose", str(run / "checkpoint.npz"), "--out", str(tmp_path / "d")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "d" / "diagnose.json").read_text())["dataset"] == str(own_file.resolve())
    np.save(tmp_path / "narrow.npy", OWN[:, :3])
    for command in (["evaluate"], ["diagnose", "--out", str(tmp_path / "d2")]):
        code, out, err = _main([command[0], str(run / "checkpoint.npz"), *command[1:], "--dataset",
                                str(tmp_path / "narrow.npy")], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "narrow.npy has 3 values per example, but the checkpoint's model takes 6" in err


@pytest.mark.parametrize("kind", BAD_FILES)
def test_an_unusable_data_file_is_refused_in_one_line_naming_it(kind, tmp_path, capsys):
    path, words = _bad_file(kind, tmp_path)
    code, out, err = _main(["train", "vae", "--dataset", str(path), "--epochs", "1", "--out", str(tmp_path / "run"),
                            "--no-progress"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("refvae: error: ") and path.name in err
    if kind == "outside-unit-interval":
        assert "or pass --likelihood gaussian --binarize none" in err
    elif kind != "other-suffix":
        assert words in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


@pytest.mark.parametrize("argv, message", [
    (["--test-fraction", "0.2"], "--test-fraction holds out rows of a --dataset file, but mnist-10k has a test set"),
    (["--dataset", "{own}", "--data-dir", "x"], "--data-dir is for --dataset mnist; a data file"),
    (["--dataset", "{two}", "--test-fraction", "0.5"], "gives 1 training rows; at least 2 are needed: add rows or "
                                                       "lower --test-fraction"),
    (["--dataset", "{own}", "--test-fraction", "1"], "argument --test-fraction: must be a number between 0 and 1"),
])
def test_data_option_errors_are_one_line_in_command_line_terms(argv, message, own_file, tmp_path, capsys):
    np.save(tmp_path / "two.npy", OWN[:2])
    argv = [a.format(own=own_file, two=tmp_path / "two.npy") for a in argv]
    code, out, err = _main(["train", "vae", *argv, "--epochs", "1", "--out", str(tmp_path / "run"), *TINY_VAE],
                           capsys)
    assert code == 2 and message in err and "Traceback" not in err and "test_fraction" not in err


def test_help_still_shows_the_real_defaults(capsys):
    code, out, _ = _main(["train", "vae", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "learning rate (default: 0.001)" in text and "examples per step (default: 128)" in text
    assert "--test-fraction F" in text and "(default: 0.1; the same fixed rows for every run and seed)" in text
    assert "or a data file of your own: .npy, .npz or .csv" in text


def test_resume_refuses_a_recorded_option_that_no_option_can_hold(own_file, tmp_path, capsys):
    run, _ = _first_run(own_file, tmp_path, capsys)
    arrays, meta = refvae.checkpoint.load_checkpoint(run / "checkpoint.npz")
    meta["training"]["options"]["hidden"] = "8,4"                   # widths, but as text
    refvae.checkpoint.save_checkpoint(run / "checkpoint.npz", arrays, meta)
    code, out, err = _main(["train", "vae", "--out", str(run), "--resume", "--epochs", "2"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "records --hidden as '8,4', which is not a value of that option" in err


def test_no_command_writes_over_its_dataset_file(own_file, tmp_path, capsys):
    run, _ = _first_run(own_file, tmp_path, capsys)
    before = own_file.read_bytes()
    for argv in (["evaluate", str(run / "checkpoint.npz"), "--iw-samples", "2", "--json", str(own_file)],
                 ["sample", str(run / "checkpoint.npz"), "--n", "3", "--out", str(own_file)]):
        code, out, err = _main(argv, capsys)
        assert code == 2 and f"{own_file} is this command's input" in err
    assert own_file.read_bytes() == before
