"""Every command-line failure is one line on stderr naming the option or the file, and how to fix it (issue 23).

The cases are tables of generated bad command lines, run in-process through ``refvae.app.main`` (the program
itself) with capsys: exit status 2, exactly one non-empty stderr line, starting with ``refvae``, no traceback.
"""

import errno
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

import refvae
from refvae import datasets
from refvae.app import main

VAE = ["train", "vae", "--epochs", "1", "--train-size", "100", "--test-size", "20", "--iw-samples", "2", "--z-dim",
       "2", "--hidden", "8", "--no-progress"]
RBM = ["train", "rbm", "--dataset", "bars", "--hidden", "8", "--epochs", "1", "--no-progress"]
HELMHOLTZ = ["train", "helmholtz", "--dataset", "hinton-bars", "--layers", "4,1", "--epochs", "1", "--train-size",
             "100", "--no-progress"]
GIB = 2**30
HAS_STRICT = importlib.util.find_spec("array_api_strict") is not None


def run(argv, capsys):
    """(exit status, stdout, stderr) of ``refvae ARGV`` on the numpy backend (a parser's refusal included)."""
    capsys.readouterr()
    with refvae.use_backend("numpy"):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as refused:
            code = refused.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(argv, capsys, *fragments, prog="refvae"):
    """The one error line of a refused command: status 2, one non-empty stderr line starting with ``prog``, no
    traceback, every fragment in it."""
    code, out, err = run(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, out[-2000:] + err[-2000:]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny trained VAE and Helmholtz machine (their run directories), and the VAE run's stderr."""
    vae, helmholtz = tmp_path_factory.mktemp("vae"), tmp_path_factory.mktemp("helmholtz")
    with refvae.use_backend("numpy"):
        assert main(VAE[:-1] + ["--test-size", "100000", "--no-progress", "--out", str(vae)]) == 0
        assert main(HELMHOLTZ + ["--out", str(helmholtz)]) == 0
    return {"vae": vae, "helmholtz": helmholtz}


# ------------------------------------------------------------------------------------------------
# 2: argparse's refusals are one line, for every subcommand
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, prog, fragment", [
    ([], "refvae", "COMMAND"),
    (["--no-such-option"], "refvae", "COMMAND"),
    (["train"], "refvae train", "MODEL"),
    (["train", "gan"], "refvae train", "'gan'"),
    (["train", "vae", "--hidden", "x"], "refvae train vae", "--hidden"),
    (["train", "vae", "--likelihood", "poisson"], "refvae train vae", "--likelihood"),
    (["train", "vae", "--no-such-option"], "refvae train vae", "--no-such-option"),
    (["train", "rbm", "--cd", "0"], "refvae train rbm", "--cd"),
    (["train", "helmholtz", "--layers", "0"], "refvae train helmholtz", "--layers"),
    (["evaluate"], "refvae evaluate", "checkpoint"),
    (["evaluate", "x.npz", "--iw-samples", "many"], "refvae evaluate", "--iw-samples"),
    (["sample", "x.npz", "--n", "abc"], "refvae sample", "--n"),
    (["sample", "x.npz", "--bogus"], "refvae sample", "--bogus"),
    (["diagnose", "x.npz", "--split", "nope"], "refvae diagnose", "--split"),
    (["gradcheck", "--backend", "tpu"], "refvae gradcheck", "--backend"),
])
def test_option_errors_are_one_line_pointing_at_the_help(argv, prog, fragment, capsys):
    line = refused(argv, capsys, fragment, prog=prog)
    assert line.endswith(f"; see {prog} --help")


# ------------------------------------------------------------------------------------------------
# 3: option values: seeds and every number, finite and in range, named
# ------------------------------------------------------------------------------------------------
SEEDED = [VAE, RBM, HELMHOLTZ, ["evaluate", "x.npz"], ["sample", "x.npz"], ["diagnose", "x.npz"], ["gradcheck"]]
RANGES = [(VAE, "--lr", ["0", "-1"]), (VAE, "--momentum", ["1", "-0.1"]),
          (VAE, "--decoder-variance", ["1e-45", "0", "-1", "1e39"]),
          (RBM, "--lr", ["0"]), (RBM, "--momentum", ["1.5"]), (RBM, "--weight-decay", ["-1e-4"]),
          (RBM, "--sparsity-target", ["0", "1"]),
          (HELMHOLTZ, "--lr", ["-0.1"]), (HELMHOLTZ, "--momentum", ["1"]), (HELMHOLTZ, "--prior-rate", ["0", "1.5"]),
          (HELMHOLTZ, "--init-std", ["-1"])]
BAD_VALUES = [(cmd, "--seed", value) for cmd in SEEDED for value in ("-1", str(2**32), "1.5")] + \
             [(cmd, option, value) for cmd, option, values in RANGES for value in [*values, "nan", "inf", "-inf", "x"]]


@pytest.mark.parametrize("command, option, value", BAD_VALUES,
                         ids=[f"{c[0]}-{c[1] if c[0] == 'train' else ''}{o}={v}" for c, o, v in BAD_VALUES])
def test_bad_option_values_are_refused_naming_the_option(command, option, value, tmp_path, capsys):
    prog = "refvae " + " ".join(command[:2] if command[0] == "train" else command[:1])
    line = refused([*command, f"{option}={value}", *(["--out", tmp_path / "o"] if command[0] == "train" else [])], capsys,
                   f"argument {option}", repr(value), prog=prog)
    assert "must be" in line or "choose one of" in line
    assert not (tmp_path / "o").exists()


def _actions(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, action


def test_no_option_takes_nan_or_infinity():
    """Every option of every command (found in the parser, not listed by hand) refuses NaN and infinity."""
    import argparse

    from refvae import app, cli

    app.install("program")
    checked = 0
    for prog, action in _actions(cli.build_parser()):
        if action.type is None or not action.option_strings:
            continue
        assert action.type is not float, f"{prog} {action.option_strings[0]} takes any float"
        for text in ("nan", "inf", "-inf"):
            with pytest.raises(argparse.ArgumentTypeError):
                action.type(text)
        checked += 1
    assert checked >= 30


# ------------------------------------------------------------------------------------------------
# 1: one memory estimate, before any allocation
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def machine_of_16_gib(monkeypatch):
    import refvae.memory

    monkeypatch.setattr(refvae.memory, "available_memory", lambda backend=None: 16 * GIB)


@pytest.mark.parametrize("argv, option", [
    (VAE + ["--hidden", "10000000"], "--hidden 10000000"),
    (VAE + ["--hidden", "400,10000000"], "--hidden 400,10000000"),
    (VAE + ["--z-dim", "10000000"], "--z-dim 10000000"),
    (RBM + ["--hidden", "10000000"], "--hidden 10000000"),
    (["train", "rbm", "--hidden", "30", "--train-size", "100", "--test-size", "10", "--ais-chains", "1000000000",
      "--no-progress"], "--ais-chains 1000000000"),
    (HELMHOLTZ + ["--layers", "10000000"], "--layers 10000000"),
    (HELMHOLTZ + ["--layers", "8,10000000"], "--layers 8,10000000"),
    (HELMHOLTZ + ["--algorithm", "rws", "--k", "1000000000"], "--k 1000000000"),
    (HELMHOLTZ + ["--train-size", "1000000000"], "--train-size 1000000000"),
])
def test_huge_sizes_are_refused_with_the_figure_before_training(argv, option, machine_of_16_gib, tmp_path, capsys):
    line = refused(argv + ["--out", tmp_path / "o"], capsys, f"{option} needs about ", "(this machine has 16 GiB "
                   "available)")
    assert "GiB" in line.split("needs about ")[1].split("(")[0] or "TiB" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("model", ["vae", "helmholtz"])
def test_sampling_too_many_is_refused_before_sampling(model, runs, machine_of_16_gib, tmp_path, capsys):
    refused(["sample", runs[model] / "checkpoint.npz", "--n", "1000000000", "--out", tmp_path / "s.npy"], capsys,
            "--n 1000000000 needs about", "draw fewer samples")
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("needs, available, fragment", [
    ([("--hidden 9", 8 * GIB, "fix A")], 4 * GIB, "--hidden 9 needs about 32 GiB of memory (this machine has 4.0 GiB "
                                                   "available); fix A"),
    ([("--a 1", 2 * GIB, "fix A"), ("--b 2", GIB // 4, "fix B")], 4 * GIB,
     "--a 1 needs about 8.0 GiB of memory alone (this machine has 4.0 GiB available); fix A"),
    ([("--a 1", GIB // 2, "fix A"), ("--b 2", GIB // 2 + 1, "fix B")], 4 * GIB,
     "--a 1 and --b 2 together need about 4.0 GiB of memory (this machine has 4.0 GiB available); fix B"),
])
def test_the_memory_estimate_names_the_largest_need(needs, available, fragment):
    from refvae.memory import MemoryEstimateError, check_memory

    with pytest.raises(MemoryEstimateError) as info:
        check_memory(needs, "float32", available=available)
    assert str(info.value) == fragment
    assert check_memory(needs, "float32", available=10 * available) == 4 * sum(n for _, n, _ in needs)


def test_the_memory_estimate_reads_meminfo_and_refuses_nothing_it_cannot_measure(tmp_path, monkeypatch):
    from refvae import memory

    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       32000000 kB\nMemAvailable:    1000000 kB\nSwapFree:         24000 kB\n")
    assert memory._meminfo_available(info) == 1024 * 1024000
    assert memory._meminfo_available(tmp_path / "none") is None
    monkeypatch.setattr(memory, "available_memory", lambda backend=None: None)
    assert memory.check_memory([("--hidden 1", 10**15, "fix")]) == 4 * 10**15
    assert memory.parameter_count([784, 400, 20]) == 784 * 400 + 400 + 400 * 20 + 20


def test_a_memory_error_at_run_time_is_one_line(monkeypatch, capsys):
    from refvae import cli

    def allocate_too_much(args):
        np.empty((10**7, 10**7))           # numpy's _ArrayMemoryError, without allocating

    monkeypatch.setattr(cli, "_gradcheck", allocate_too_much)
    refused(["gradcheck"], capsys, "out of memory", "--hidden")


def test_a_size_beyond_the_data_is_clipped_with_a_note(runs):
    metrics = json.loads((runs["vae"] / "metrics.json").read_text())
    assert metrics["test"]["n"] == 2000                  # --test-size 100000 of mnist-10k's 2000


def test_the_clipping_note_names_the_option(capsys):
    import argparse

    from refvae.cli import load_from_args

    args = argparse.Namespace(dataset="bars", data_dir=None, train_size=100000, test_size=5)
    train, _, test, _ = load_from_args(args)
    assert train.shape[0] == 30 and test.shape[0] == 5
    assert "refvae: note: --train-size 100000 is more than the 30 training examples of bars" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# 4: a diverging run's stderr is its one error line, no NumPy RuntimeWarnings before it
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [["--lr", "1"], ["--lr", "100"], ["--optimizer", "sgd", "--lr", "1"]])
def test_a_diverging_run_prints_one_line(extra, tmp_path):
    """In a subprocess: NumPy's RuntimeWarnings go to the real stderr there (pytest would capture them here)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    argv = ["train", "vae", "--epochs", "1", "--train-size", "300", "--test-size", "50", "--iw-samples", "5",
            "--no-progress", *extra, "--out", str(tmp_path)]
    result = subprocess.run([sys.executable, "-m", "refvae", *argv], cwd=root, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "MPLBACKEND": "Agg", "REFVAE_BACKEND": "numpy",
                                              "PYTHONPATH": str(root)})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("refvae: error: ") and "diverged" in lines[0] and "learning rate" in lines[0]


def test_library_calls_keep_numpys_warnings():
    """Only the command line silences floating-point warnings; a library user's errstate is left alone."""
    with pytest.warns(RuntimeWarning):
        np.exp(np.float32(1000.0))
    assert np.geterr()["over"] == "warn"


# ------------------------------------------------------------------------------------------------
# 5: disk errors name the file and a fix
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, name, fix", [
    (errno.ENOSPC, "metrics.json", "free space or choose another --out"),
    (errno.EROFS, "checkpoint.npz", "choose another --out (this file system is read-only)"),
    (errno.EACCES, "curves.png", "choose another --out that you may write to"),
    (errno.EDQUOT, "dreams.png", "free space or choose another --out"),
])
def test_a_write_that_fails_names_the_file_and_a_fix(code, name, fix, monkeypatch, tmp_path, capsys):
    replace = os.replace

    def failing(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            raise OSError(code, os.strerror(code))         # as the system raises it: no file name
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    out = tmp_path / "run"
    line = refused(HELMHOLTZ + ["--out", out], capsys, f"cannot write {out / name}: ", fix)
    assert os.strerror(code).lower() in line.lower()
    assert not list(out.glob("*.tmp"))


def test_json_output_on_a_full_disk_names_json(runs, monkeypatch, tmp_path, capsys):
    replace = os.replace

    def full(src, dst, *args, **kwargs):
        if str(dst).endswith("m.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    target = tmp_path / "m.json"
    refused(["evaluate", runs["helmholtz"] / "checkpoint.npz", "--dataset", "hinton-bars", "--json", target], capsys,
            f"cannot write {target}", "free space or choose another --json")


# ------------------------------------------------------------------------------------------------
# 6: malformed IDX files are refused naming the file
# ------------------------------------------------------------------------------------------------
def _mnist_dir(directory: Path, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test, dtype=np.uint8)}
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        datasets.write_idx(directory / name, array)
    return directory


IDX_CASES = {
    "zero images": (lambda raw: bytes([0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28]), "0 images"),
    "wrong magic": (lambda raw: b"\x01\x02" + raw[2:], "two zero bytes"),
    "unknown type": (lambda raw: raw[:2] + b"\x0a" + raw[3:], "type code 0x0A"),
    "truncated data": (lambda raw: raw[:-7], "truncated"),
    "truncated header": (lambda raw: raw[:9], "header declares 3 dimensions"),
    "too short": (lambda raw: raw[:3], "too short"),
    "empty": (lambda raw: b"", "too short"),
    "longer than declared": (lambda raw: raw + b"\x00", "longer than declared"),
    "labels, not images": (lambda raw: bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]), "expected MNIST images"),
    "broken gzip": (lambda raw: b"\x1f\x8b\x08" + raw[:40], "gzip"),
}


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_a_malformed_idx_file_is_one_line_naming_it(case, tmp_path, capsys):
    corrupt, fragment = IDX_CASES[case]
    data = _mnist_dir(tmp_path / "mnist")
    bad = data / "train-images-idx3-ubyte"
    bad.write_bytes(corrupt(bad.read_bytes()))
    refused(VAE + ["--dataset", "mnist", "--data-dir", data, "--out", tmp_path / "o"], capsys, str(bad), fragment)
    assert not (tmp_path / "o").exists()


def test_a_well_formed_file_that_is_not_the_published_mnist_is_one_line_with_a_fix(tmp_path, capsys):
    data = _mnist_dir(tmp_path / "mnist")          # valid IDX, but random images: not the published digests
    line = refused(VAE + ["--dataset", "mnist", "--data-dir", data, "--out", tmp_path / "o"], capsys,
                   str(data / "train-images-idx3-ubyte"), "is not the published", "--dataset FILE.npy")
    assert "verify=False" not in line
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# 7: data of another width, in the terms of --dataset
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model, dataset, trained, given", [("vae", "bars", 784, 16),
                                                             ("helmholtz", "mnist-10k", 16, 784)])
def test_evaluating_on_data_of_another_width_speaks_of_the_dataset(model, dataset, trained, given, runs, capsys):
    line = refused(["evaluate", runs[model] / "checkpoint.npz", "--dataset", dataset, "--iw-samples", "2",
                    "--test-size", "10"], capsys,
                   f"--dataset {dataset} has {given} values per example, but the checkpoint's model takes "
                   f"{trained}: pass the --dataset it was trained on")
    assert "x_dim" not in line


# ------------------------------------------------------------------------------------------------
# 8: a diverged VAE is divergence, and its report is written with what is finite
# ------------------------------------------------------------------------------------------------
def test_a_vae_with_non_finite_samples_is_divergence_with_a_report(monkeypatch, tmp_path, capsys):
    from refvae.vae.model import GaussianVAE

    sample = GaussianVAE.sample

    def diverged(self, n, *args, **kwargs):            # a model whose decoder overflows away from the data
        x = refvae.get_backend().to_numpy(sample(self, n, *args, **kwargs)).copy()
        x[:, :3] = np.nan
        return refvae.get_backend().asarray(x)

    monkeypatch.setattr(GaussianVAE, "sample", diverged)
    line = refused(VAE + ["--lr", "0.002", "--out", tmp_path], capsys, "diverged", "samples.png (not drawn)",
                   "smaller --lr (this run: 0.002)", "report.md")
    assert "non-finite value(s)" not in line
    report = (tmp_path / "report.md").read_text()
    assert "![curves](curves.png)" in report and "samples.png" not in report
    assert (tmp_path / "metrics.json").exists() and not (tmp_path / "samples.png").exists()
    assert (tmp_path / "posterior.png").exists()


# ------------------------------------------------------------------------------------------------
# 9: mixing backends in the Python API
# ------------------------------------------------------------------------------------------------
def _models():
    from rbm import BernoulliRBM
    from refvae.vae.model import GaussianVAE
    from wakesleep import HelmholtzMachine

    return {"vae": (lambda: GaussianVAE(6, 2, hidden=(3,)), lambda m, x: m.encode(x)),
            "rbm": (lambda: BernoulliRBM(6, 3), lambda m, x: m.log_likelihood(x, log_z=0.0)),
            "helmholtz": (lambda: HelmholtzMachine((6, 3, 1)), lambda m, x: m.log_likelihood(x, method="exact"))}


@pytest.mark.skipif(not HAS_STRICT, reason="array-api-strict is not installed")
@pytest.mark.parametrize("model", ["vae", "rbm", "helmholtz"])
@pytest.mark.parametrize("built, used", [("strict", "numpy"), ("numpy", "strict")])
def test_a_model_used_under_another_backend_says_what_to_do(model, built, used):
    build, use = _models()[model]
    x = (np.random.default_rng(0).random((4, 6)) > 0.5).astype(np.float32)
    with refvae.use_backend(built):
        m = build()
        use(m, x)                                       # host data are welcome on every backend
    with refvae.use_backend(used):
        with pytest.raises(refvae.backend.BackendError, match=rf"built on backend '{built}'.*active one is now "
                           rf"backend '{used}'.*set_backend\('{built}'\)"):
            use(m, x)


@pytest.mark.skipif(not HAS_STRICT, reason="array-api-strict is not installed")
@pytest.mark.parametrize("model", ["vae", "rbm", "helmholtz"])
def test_device_data_of_another_backend_says_what_to_do(model):
    build, use = _models()[model]
    x = (np.random.default_rng(0).random((4, 6)) > 0.5).astype(np.float32)
    with refvae.use_backend("strict") as strict:
        x_device = strict.asarray(x)
    with refvae.use_backend("numpy"):
        m = build()
        with pytest.raises(refvae.backend.BackendError, match=r"is an array of array_api_strict on device .* but the "
                           r"model lives on backend 'numpy': pass a NumPy array"):
            use(m, x_device)


def test_a_models_own_width_refusal_is_rewritten_in_the_same_words():
    """Where a model refuses data of another width itself (library words: x_dim), the command line says it as
    check_width does, naming --dataset."""
    import argparse

    from refvae.app import install
    from refvae.cli import _one_line, check_width

    install("program")
    library = ValueError("x has 16 columns but the model expects 784: pass data of shape (n, 784) or build the "
                         "model with x_dim=784")
    line = _one_line(library, argparse.Namespace(dataset="bars", command="evaluate"))
    with pytest.raises(ValueError) as refusal:
        check_width("bars", 16, 784)
    assert line == str(refusal.value) and "x_dim" not in line
