"""The command line cannot lose a run, mix two runs, print a traceback or a number it cannot stand behind (issue 12).

Every case runs the real program (``python -m refvae``) in a subprocess and checks the exit status, the one-line
message and that no traceback appears; where a subprocess cannot be steered (no network), ``refvae.app.main`` runs
in-process instead.
"""

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import refvae
from refvae.app import main
from conftest import CUPY_SKIP

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
VAE = ["train", "vae", "--epochs", "1", "--train-size", "200", "--test-size", "50", "--iw-samples", "5",
       "--z-dim", "2", "--hidden", "16", "--no-progress"]
RBM = ["train", "rbm", "--dataset", "bars", "--hidden", "8", "--epochs", "1", "--no-progress"]
HELMHOLTZ = ["train", "helmholtz", "--dataset", "hinton-bars", "--layers", "4,1", "--epochs", "1", "--train-size",
             "200", "--no-progress"]


def refvae_cli(*args, env=None, timeout=300):
    """``python -m refvae ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "refvae", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})


def error_line(out, fragment, status=2):
    """The one error line of a failed command (checked: status, no traceback, the fragment in it)."""
    assert out.returncode == status, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1, out.stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


def ok(out):
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    return out


def strict_json(path):
    """Parse with the standard's rules: Infinity, -Infinity and NaN are not JSON."""
    def refuse(name):
        raise ValueError(f"{path} holds {name}, which standard JSON parsers reject")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae-run")
    ok(refvae_cli(*VAE, "--out", out))
    return out


@pytest.fixture(scope="module")
def rbm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rbm-run")
    ok(refvae_cli(*RBM, "--out", out))
    return out


@pytest.fixture(scope="module")
def helmholtz_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("helmholtz-run")
    ok(refvae_cli(*HELMHOLTZ, "--out", out))
    return out


# ------------------------------------------------------------------------------------------------
# 1-4: data loss and mixed runs
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [VAE, RBM, HELMHOLTZ], ids=["vae", "rbm", "helmholtz"])
def test_a_new_run_does_not_replace_an_existing_one_without_force(command, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")                 # a directory without a run is fine
    ok(refvae_cli(*command, "--epochs", "2", "--out", tmp_path))
    before = (tmp_path / "checkpoint.npz").read_bytes()
    line = error_line(refvae_cli(*command, "--out", tmp_path), "already holds a run")
    assert "--resume" in line and "--force" in line
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert strict_json(tmp_path / "metrics.json")["history"]["epoch"] == [1, 2]
    out = ok(refvae_cli(*command, "--force", "--out", tmp_path))
    assert "replacing" in out.stderr
    assert strict_json(tmp_path / "metrics.json")["history"]["epoch"] == [1]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    error_line(refvae_cli(*command, "--force", "--resume", "--out", tmp_path), "--resume")


def test_a_second_writer_is_refused_and_a_killed_runs_lock_is_taken_over(tmp_path):
    slow = ["train", "vae", "--epochs", "1000", "--train-size", "8000", "--test-size", "50", "--iw-samples", "5",
            "--no-progress", "--out", str(tmp_path)]
    first = subprocess.Popen([sys.executable, "-m", "refvae", *slow], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, "MPLBACKEND": "Agg"})
    try:
        lock = tmp_path / "refvae.lock"
        deadline = time.time() + 60
        while not (lock.exists() and lock.read_text().strip()) and time.time() < deadline:
            time.sleep(0.05)
        assert lock.read_text().split()[0] == str(first.pid)
        line = error_line(refvae_cli(*VAE, "--out", tmp_path), "in use by another refvae run")
        assert f"pid {first.pid}" in line
        error_line(refvae_cli(*VAE, "--force", "--out", tmp_path), "in use by another refvae run")
        assert first.poll() is None                               # the first run was not disturbed
    finally:
        first.kill()                                              # SIGKILL: no clean-up, the lock file stays
        first.wait()
    assert lock.exists()
    out = ok(refvae_cli(*VAE, "--force", "--out", tmp_path))
    assert "stale lock" in out.stderr and str(first.pid) in out.stderr
    assert not lock.exists()                                      # released at the end of the run


def test_stale_temporary_files_are_removed_when_a_run_starts(tmp_path):
    stale = [tmp_path / "checkpoint.npz.k3j4q.tmp", tmp_path / "metrics.json.abc12.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    (tmp_path / "keep.tmp").write_text("not ours")
    out = ok(refvae_cli(*VAE, "--out", tmp_path))
    assert not any(p.exists() for p in stale)
    assert (tmp_path / "keep.tmp").exists()
    assert "removed 2 temporary files" in out.stderr


def test_resuming_with_fewer_epochs_than_done_is_one_line_and_writes_nothing(tmp_path):
    run = tmp_path / "run"
    ok(refvae_cli(*VAE, "--epochs", "2", "--out", run))
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    line = error_line(refvae_cli(*VAE, "--resume", "--out", run), "already holds 2 epochs")
    assert line.startswith("refvae: error: ")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == files


# ------------------------------------------------------------------------------------------------
# 5: output paths checked before any work
# ------------------------------------------------------------------------------------------------
def test_train_out_that_is_a_file_or_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out, fragment in [(blocker, "is a file, not a directory"), (blocker / "run", "cannot create --out")]:
        result = refvae_cli(*VAE, "--out", out)
        error_line(result, fragment)
        assert "refvae: training" not in result.stdout           # refused before any training
    assert blocker.read_text() == "x"


def test_sample_diagnose_and_evaluate_outputs_checked_first(vae_run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    checkpoint = vae_run / "checkpoint.npz"
    error_line(refvae_cli("sample", checkpoint, "--out", blocker / "s.png"), "cannot write --out")
    error_line(refvae_cli("sample", checkpoint, "--out", tmp_path), "is a directory")
    error_line(refvae_cli("sample", checkpoint, "--out", tmp_path / "s.jpg"), "must end in .png")
    result = refvae_cli("diagnose", checkpoint, "--size", "50", "--out", blocker)
    error_line(result, "is a file, not a directory")
    assert "Aggregate posterior" not in result.stdout
    result = refvae_cli("evaluate", checkpoint, "--test-size", "20", "--iw-samples", "2", "--no-progress",
                        "--json", blocker / "e.json")
    error_line(result, "cannot write --json")
    assert "test ELBO" not in result.stdout


# ------------------------------------------------------------------------------------------------
# 7: sample works for every model kind, and a PNG grid stays a sensible size
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["rbm_run", "helmholtz_run"])
def test_sample_draws_from_every_model_kind(run, request, tmp_path):
    checkpoint = request.getfixturevalue(run) / "checkpoint.npz"
    out = ok(refvae_cli("sample", checkpoint, "--n", "7", "--out", tmp_path / "s.png"))
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG and "wrote 7 samples" in out.stdout
    ok(refvae_cli("sample", checkpoint, "--n", "5", "--binary", "--out", tmp_path / "s.npy"))
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (5, 16) and set(np.unique(x)) <= {0.0, 1.0}


def test_sampler_registry_is_per_kind():
    from refvae import cli
    refvae.app.install()
    assert {"GaussianVAE", "BernoulliRBM", "HelmholtzMachine"} <= set(cli._SAMPLERS)


def test_sample_caps_a_png_grid(vae_run, tmp_path):
    out = ok(refvae_cli("sample", vae_run / "checkpoint.npz", "--n", "10000", "--out", tmp_path / "s.png"))
    assert "wrote 400 samples" in out.stdout and "--n 10000" in out.stdout and ".npy" in out.stdout
    assert (tmp_path / "s.png").stat().st_size < 2_000_000


# ------------------------------------------------------------------------------------------------
# 9-11: options that cannot be right are refused before any work
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, option", [
    (VAE + ["--train-size", "0"], "--train-size"),
    (VAE + ["--train-size", "-5"], "--train-size"),
    (VAE + ["--test-size", "0"], "--test-size"),
    (VAE + ["--epochs", "0"], "--epochs"),
    (VAE + ["--batch-size", "0"], "--batch-size"),
    (VAE + ["--iw-samples", "0"], "--iw-samples"),
    (RBM + ["--ais-chains", "0"], "--ais-chains"),
    (RBM + ["--ais-betas", "1"], "--ais-betas"),
    (HELMHOLTZ + ["--train-size", "0"], "--train-size"),
    (["diagnose", "no-such.npz", "--size", "0"], "--size"),
    (["sample", "no-such.npz", "--n", "0"], "--n"),
    (["evaluate", "no-such.npz", "--ais-chains", "0"], "--ais-chains"),
])
def test_non_positive_sizes_are_refused(argv, option, tmp_path):
    result = refvae_cli(*argv, *(["--out", tmp_path / "o"] if argv[0] == "train" else []))
    line = error_line(result, f"argument {option}")
    assert "at least" in line
    assert "refvae: training" not in result.stdout and not (tmp_path / "o").exists()


def test_a_vae_needs_two_training_examples_before_training(tmp_path):
    result = refvae_cli(*VAE, "--train-size", "1", "--out", tmp_path)
    error_line(result, "at least 2 training examples")
    assert "epoch 1/" not in result.stdout and not (tmp_path / "checkpoint.npz").exists()


# ------------------------------------------------------------------------------------------------
# 12-13: numbers that cannot be trusted are said to be so; JSON holds no Infinity
# ------------------------------------------------------------------------------------------------
def test_an_untrustworthy_ais_estimate_is_said_so(tmp_path):
    from rbm import BernoulliRBM
    model = BernoulliRBM(784, 30, seed=0)                     # strong weights: AIS with 2 temperatures fails
    W = (np.random.default_rng(0).normal(size=(784, 30)) * 0.3).astype("float32")
    with refvae.use_backend("numpy"):
        model.set_params({"W": W, "b": model.params["b"], "c": model.params["c"]})
        model.save(tmp_path / "rbm.npz")
    out = ok(refvae_cli("evaluate", tmp_path / "rbm.npz", "--test-size", "20", "--ais-chains", "5", "--ais-betas",
                        "2", "--json", tmp_path / "e.json"))
    text = out.stdout + out.stderr
    assert "inf" not in text.lower()
    assert "effective chains of 5" in out.stdout and "no upper bound" in out.stdout
    warnings = [line for line in text.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and "--ais-chains" in warnings[0], text
    test = strict_json(tmp_path / "e.json")["test"]
    assert test["log_likelihood_bounds"][1] is None and test["ais"]["trustworthy"] is False
    assert test["ais"]["effective_chains"] < 5


def test_exact_log_z_up_to_the_enumeration_limit(monkeypatch):
    import argparse

    import rbm
    import rbm.cli
    from rbm import BernoulliRBM
    asked = []
    with refvae.use_backend("numpy"):
        model = BernoulliRBM(784, rbm.MAX_ENUMERATION, seed=0)
        monkeypatch.setattr(model, "log_partition", lambda method, **kw: asked.append(method) or 0.0)
        metrics = rbm.cli.evaluate_rbm(model, np.zeros((3, 784), "float32"), np.zeros((3, 784), "float32"),
                                       argparse.Namespace(ais_chains=10, ais_betas=10, seed=0, no_progress=True))
    assert asked == ["exact"] and metrics["method"] == "exact"


def test_write_json_writes_null_for_values_that_are_not_finite(tmp_path):
    from refvae.cli import write_json
    write_json(tmp_path / "m.json", {"a": float("inf"), "b": [1.0, np.float64("nan")], "c": {"d": -math.inf}})
    doc = strict_json(tmp_path / "m.json")
    assert doc["a"] is None and doc["b"] == [1.0, None] and doc["c"] == {"d": None}
    assert doc["non_finite"] == {"a": "Infinity", "b[1]": "NaN", "c.d": "-Infinity"}


# ------------------------------------------------------------------------------------------------
# 6, 8: failures of the environment are one line too
# ------------------------------------------------------------------------------------------------
def test_mnist_without_network_is_one_line_naming_the_options(monkeypatch, tmp_path, capsys):
    import refvae.datasets.mnist as mnist

    def offline(url, dest):
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "_fetch", offline)
    monkeypatch.setenv("REFVAE_DATA", str(tmp_path / "cache"))
    with refvae.use_backend("numpy"):
        code = main(["train", "vae", "--dataset", "mnist", "--epochs", "1", "--no-progress",
                     "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("refvae: error: could not download"), err
    assert "--data-dir" in lines[0] and "data_dir=" not in lines[0] and "--dataset mnist-10k" in lines[0]


EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py"))


@pytest.mark.skipif(CUPY_SKIP is None, reason="a CUDA GPU is usable here")
@pytest.mark.parametrize("script", EXAMPLES)
def test_examples_without_cupy_say_so_in_one_line(script, tmp_path):
    """Without CuPy, or with CuPy but no GPU, ``--backend cupy`` is one line naming CuPy, and nothing is written."""
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--backend", "cupy", "--quick"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "CuPy" in lines[0], out.stderr
    assert not any(tmp_path.iterdir())                            # nothing written


# ------------------------------------------------------------------------------------------------
# 14-16: help, reports, progress
# ------------------------------------------------------------------------------------------------
def _parsers(parser):
    yield parser
    for action in parser._actions:
        for sub in (getattr(action, "choices", None) or {}).values() if hasattr(action, "_parser_class") else ():
            yield from _parsers(sub)


def test_help_lists_the_models_and_every_option_has_help():
    from refvae.cli import build_parser
    refvae.app.install()
    top = build_parser()
    text = top.format_help()
    for model in ("vae", "rbm", "helmholtz"):
        assert re.search(rf"\b{model}\b", text), text
    parsers = list(_parsers(top))
    assert len(parsers) >= 9
    missing = [f"{p.prog} {a.option_strings[0]}" for p in parsers for a in p._actions
               if a.option_strings and not a.help]
    assert not missing, missing
    vae_help = refvae_cli("train", "vae", "--help").stdout
    assert "hinton-bars" in vae_help and "(default: 128)" in vae_help and "(default: runs/vae)" in vae_help
    assert "--force" in refvae_cli("train", "rbm", "--help").stdout
    assert "--force" in refvae_cli("train", "helmholtz", "--help").stdout


def _table_rows(markdown):
    """Cells of every table row, split at the pipes that are not escaped."""
    return [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in markdown.splitlines() if line.startswith("|")]


def test_report_has_a_readable_header_and_escaped_cells(vae_run):
    report = (vae_run / "report.md").read_text()
    first = report.splitlines()[0]
    assert first.startswith("# ") and "{" not in first and "'" not in first
    rows = _table_rows(report)
    assert rows and all(len(r) in (2, 4) for r in rows), rows
    assert r"E_q[log p(x\|z)]" in report


@pytest.mark.long
def test_no_progress_keeps_the_epoch_lines(tmp_path):
    for command in (VAE, RBM, HELMHOLTZ):
        out = ok(refvae_cli(*command, "--epochs", "2", "--out", tmp_path / command[1]))
        assert "epoch 1/2: train loss" in out.stdout and "epoch 2/2: train loss" in out.stdout, out.stdout


# ------------------------------------------------------------------------------------------------
# 15, 17-18: the examples' summaries, the t test's critical value, the dreams' borders
# ------------------------------------------------------------------------------------------------
def _example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prior_alignment_uses_the_critical_value_of_the_seeds_run(tmp_path):
    example = _example("prior_alignment")
    rng = np.random.default_rng(0)
    curves = {arm: rng.normal(-200, 1, size=(2, 2)).tolist() for arm in example.ARMS}
    with refvae.use_backend("numpy"):
        example.summarise(curves, epochs=2, n_seeds=2, out=tmp_path, quick=True)
    summary = (tmp_path / "summary.md").read_text()
    assert "4 degrees of freedom" not in summary and "2.8" not in summary
    assert "|t| > 12.71 is significant at 5% with 1 degree of freedom" in summary.replace("\\|", "|")


def _tables_are_consistent(lines):
    """Every table has the same number of cells (split at unescaped pipes) in each of its rows."""
    width = None
    for line in lines + [""]:
        if line.startswith("|"):
            cells = len(re.split(r"(?<!\\)\|", line.strip())) - 2
            assert cells == (width or cells), line
            width = cells
        else:
            width = None


def test_example_summaries_escape_pipes_in_table_cells():
    compare = _example("compare_models")
    rows = {"VAE": {"log_likelihood": -100.0, "estimator": "importance-weighted, k=5 from q(z|x)",
                    "train_seconds": 1.0, "eval_seconds": 1.0},
            "RBM": {"log_likelihood": -120.0, "interval": [-121.0, -119.0], "estimator": "AIS",
                    "train_seconds": 1.0, "eval_seconds": 1.0}}
    lines = compare.summary_lines(rows, n_train=500, n_test=100, epochs=1, backend="numpy", quick=True)
    _tables_are_consistent(lines)
    assert r"q(z\|x)" in "\n".join(lines)
    adaptive = _example("rbm_adaptive_prior")
    exact = {arm: [{"seed": 0, "test_ll": -100.0, "prior_gap_max": 0.1},
                   {"seed": 1, "test_ll": -101.0, "prior_gap_max": 0.2}] for arm in adaptive.ARMS}
    ais = {"CD-1": {"test_ll": -120.0, "log_z": 300.0, "log_z_lower": 299.0, "log_z_upper": 301.0, "epochs": 1}}
    lines = adaptive.summary_lines(exact, ais, n_train=500, n_test=100, epochs=1, small=8, large=30, chains=10,
                                   betas=50, quick=True)
    _tables_are_consistent(lines)
    assert r"P(h\|v)" in "\n".join(lines)


def test_dreams_have_borders(monkeypatch, tmp_path):
    import wakesleep.cli
    seen = {}
    real = wakesleep.cli.plots.plot_image_grid

    def spy(images, path, **kwargs):
        if Path(path).name == "dreams.png":
            seen.update(images=np.asarray(images), **kwargs)
        return real(images, path, **kwargs)

    monkeypatch.setattr(wakesleep.cli.plots, "plot_image_grid", spy)
    with refvae.use_backend("numpy"):
        assert main(HELMHOLTZ + ["--out", str(tmp_path)]) == 0
    h, w = seen["image_shape"]
    assert (h, w) == (6, 6)
    tiles = seen["images"].reshape(-1, h, w)
    assert np.all(tiles[:, 0, :] == 0.5) and np.all(tiles[:, :, -1] == 0.5)


def test_exact_training_from_the_command_line(tmp_path):
    """--negative-phase exact (RBM) and --algorithm exact (Helmholtz) train and record the setting; too large a
    model for enumeration is one error line that names the limit and the alternative."""
    with refvae.use_backend("numpy"):
        assert main([*RBM, "--negative-phase", "exact", "--out", str(tmp_path / "rbm")]) == 0
        assert main([*HELMHOLTZ, "--algorithm", "exact", "--out", str(tmp_path / "hm")]) == 0
    assert json.loads((tmp_path / "rbm" / "metrics.json").read_text())["model"]["negative_phase"] == "exact"
    assert refvae.load(tmp_path / "hm" / "checkpoint.npz").algorithm == "exact"
    line = error_line(refvae_cli("train", "rbm", "--hidden", "30", "--negative-phase", "exact", "--out",
                                 tmp_path / "big"), "at most 20")
    assert "gibbs" in line
    line = error_line(refvae_cli("train", "helmholtz", "--layers", "200,50", "--algorithm", "exact", "--out",
                                 tmp_path / "big2"), "at most 20")
    assert "wake-sleep" in line


def test_resume_without_the_checkpoint_refuses_to_start_again_over_the_run(tmp_path):
    """The checkpoint of a finished run is gone but its metrics, report and plots remain: --resume would start at
    epoch 0 and replace them. It refuses, in one line, and leaves every file as it was."""
    ok(refvae_cli(*VAE, "--out", tmp_path))
    (tmp_path / "checkpoint.npz").unlink()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    line = error_line(refvae_cli(*VAE, "--epochs", "2", "--resume", "--out", tmp_path), "no checkpoint.npz")
    assert "--force" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    """Security: a refvae.lock link in the run directory must not be followed (it would truncate its target)."""
    target = tmp_path / "precious.txt"
    target.write_text("do not truncate me")
    run = tmp_path / "run"
    run.mkdir()
    (run / "refvae.lock").symlink_to(target)
    error_line(refvae_cli(*VAE, "--out", run), "symbolic link")
    assert target.read_text() == "do not truncate me"
