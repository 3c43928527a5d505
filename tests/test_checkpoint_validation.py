"""The one validator of checkpoints, against a table of generated bad files: every one refused with one
CheckpointError naming the field, and nothing else raised (no AttributeError, TypeError, KeyError, MemoryError).

Each case starts from a real checkpoint of a short training run (a VAE with Adam, an RBM with PCD chains, a
sparsity average and SGD with momentum, a Helmholtz machine with the RBM prior's sleep chains) and breaks one
thing: the document, a config field, an array, the model's state, the optimiser's state, or the archive itself.
"""

import json
import pickle
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import refvae
from rbm import BernoulliRBM
from refvae import SGD, Adam, CheckpointError, GaussianVAE, fit
from refvae import checkpoint_validation as validation
from refvae.app import main
from refvae.checkpoint import load_checkpoint
from wakesleep import HelmholtzMachine

X = np.random.default_rng(0).uniform(size=(32, 8))
RUNS = {   # kind -> (model, optimizer), each trained one epoch on X
    "vae": (lambda: GaussianVAE(8, 2, hidden=(4,)), lambda: Adam(1e-3)),
    "rbm": (lambda: BernoulliRBM(8, 3, sparsity_target=0.1), lambda: SGD(0.01, momentum=0.5)),
    "hm": (lambda: HelmholtzMachine((8, 4, 3), prior="rbm"), lambda: Adam(1e-3)),
}
FIT = {"batch_size": 16, "seed": 0, "progress": False}


def _train(kind, path, epochs=1, resume=False):
    model, optimizer = (make() for make in RUNS[kind])
    with refvae.use_backend("numpy"):
        fit(model, X, epochs=epochs, optimizer=optimizer, checkpoint=path, resume=resume, **FIT)
    return model


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """kind -> (arrays, meta) of a training checkpoint."""
    out = tmp_path_factory.mktemp("good")
    found = {}
    for kind in RUNS:
        _train(kind, out / f"{kind}.npz")
        found[kind] = load_checkpoint(out / f"{kind}.npz")
    return found


def _write(path, arrays, meta):
    """A checkpoint written as refvae writes one, but with any document: ``meta`` as an object, or a JSON text."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    np.savez(path, **arrays, __meta__=np.array(text))
    return path


# ------------------------------------------------------------------------------------------------
# the table: (kind, what is broken, how, a fragment of the refusal, refused on "load" or on "resume")
# ------------------------------------------------------------------------------------------------
def _meta(**changes):
    def change(arrays, meta):
        for dotted, value in changes.items():
            *parents, key = dotted.split("__")
            target = meta
            for p in parents:
                target = target[p]
            if value is _DELETE:
                del target[key]
            else:
                target[key] = value
        return arrays, meta
    return change


_DELETE = object()


def _document(text):
    return lambda arrays, meta: (arrays, text)


def _array(name, fn):
    def change(arrays, meta):
        arrays = dict(arrays)
        if fn is _DELETE:
            del arrays[name]
        else:
            arrays[name] = fn(arrays.get(name))
        return arrays, meta
    return change


def _set(index, value):
    def fn(a):
        a = np.array(a, copy=True)
        a[index] = value
        return a
    return fn


DOCUMENT_CASES = [
    ("a JSON list", _document("[1, 2]"), "JSON list, not an object"),
    ("a JSON number", _document("5"), "JSON number, not an object"),
    ("a JSON string", _document('"checkpoint"'), "JSON string, not an object"),
    ("not JSON", _document("{"), "not valid JSON"),
    ("nested too deep", _document("[" * 200_000 + "]" * 200_000), "not valid JSON"),
    ("no format", _meta(format=_DELETE), "format None"),
    ("another format", _meta(format="x"), "format 'x'"),
    ("no version", _meta(version=_DELETE), "field version is missing"),
    ("version a string", _meta(version="1"), "field version must be an integer"),
    ("version a boolean", _meta(version=True), "field version must be an integer"),
    ("version 0", _meta(version=0), "field version must be a positive"),
    ("a newer version", _meta(version=99), "newer refvae"),
    ("no kind", _meta(kind=_DELETE), "field kind is missing"),
    ("kind a number", _meta(kind=5), "field kind must be a string"),
    ("kind empty", _meta(kind=""), "field kind is empty"),
    ("kind unknown", _meta(kind="Nope"), "kind 'Nope'"),
    ("no config", _meta(config=_DELETE), "field config is missing"),
    ("config a list", _meta(config=[1]), "field config must be an object"),
    ("config unknown field", _meta(config__colour=1), "colour"),
]
TRAINING_CASES = [   # read on resume; checked on every load
    ("training a list", _meta(training=[]), "field training must be an object"),
    ("no epochs_done", _meta(training__epochs_done=_DELETE), "training.epochs_done is missing"),
    ("epochs_done negative", _meta(training__epochs_done=-1), "training.epochs_done must be >= 0"),
    ("epochs_done a string", _meta(training__epochs_done="1"), "training.epochs_done must be an integer"),
    ("epochs_done a float", _meta(training__epochs_done=1.0), "training.epochs_done must be an integer"),
    ("settings a list", _meta(training__settings=[]), "training.settings must be an object"),
    ("no history", _meta(training__history=_DELETE), "training.history is missing"),
    ("history a list", _meta(training__history=[1]), "training.history must be an object"),
    ("history short", _meta(training__history__train_loss=[]), "training.history.train_loss has 0 entries"),
    ("history epochs miscounted", _meta(training__history__epoch=[7]), "training.history.epoch must count"),
    ("history a string", _meta(training__history__seconds="1"), "training.history.seconds must be a list"),
    ("history NaN", _meta(training__history__train_loss=[float("nan")]), "training.history.train_loss holds nan"),
    ("history a text value", _meta(training__history__val_loss=["x"]), "training.history.val_loss holds 'x'"),
    ("extra history not a list", _meta(training__history__lr=0.1), "training.history.lr must be a list"),
    ("no optimizer", _meta(training__optimizer=_DELETE), "training.optimizer is missing"),
    ("optimizer a string", _meta(training__optimizer="Adam"), "training.optimizer must be an object"),
    ("optimizer kind a number", _meta(training__optimizer__kind=1), "training.optimizer.kind must be a string"),
    ("no step counter", _meta(training__optimizer__t=_DELETE), "training.optimizer.t is missing"),
    ("step counter negative", _meta(training__optimizer__t=-1), "training.optimizer.t (steps taken) must be >= 0"),
    ("step counter a float", _meta(training__optimizer__t=1.5), "training.optimizer.t must be an integer"),
    ("rate NaN", _meta(training__optimizer__lr=float("nan")), "training.optimizer.lr must be a finite"),
    ("rate a string", _meta(training__optimizer__lr="0.1"), "training.optimizer.lr must be a number"),
    ("optimizer settings a list", _meta(training__optimizer__settings=[]), "training.optimizer.settings must be"),
]
PARAMETER = {"vae": "model/encoder.0.W", "rbm": "model/W", "hm": "model/gen.1.W"}
ARRAY_CASES = [   # (name, kind -> change, fragment)
    ("a parameter missing", lambda k: _array(PARAMETER[k], _DELETE), "missing"),
    ("an unknown parameter", lambda k: _array("model/extra", lambda a: np.zeros(3, np.float32)), "unexpected"),
    ("an unknown array", lambda k: _array("notes", lambda a: np.zeros(3)), "notes"),
    ("a transposed parameter", lambda k: _array(PARAMETER[k], lambda a: a.T.copy()), "shape"),
    ("a parameter of one more row", lambda k: _array(PARAMETER[k], lambda a: np.concatenate([a, a[:1]])), "shape"),
    ("a NaN parameter", lambda k: _array(PARAMETER[k], _set((0, 0), np.nan)), "non-finite parameters"),
    ("an infinite parameter", lambda k: _array(PARAMETER[k], _set((0, 0), -np.inf)), "non-finite parameters"),
    ("beyond float32", lambda k: _array(PARAMETER[k], lambda a: _set((0, 0), 1e39)(a.astype(np.float64))),
     "beyond the range"),
    ("complex parameters", lambda k: _array(PARAMETER[k], lambda a: a.astype(np.complex64)), "dtype complex64"),
    ("text parameters", lambda k: _array(PARAMETER[k], lambda a: a.astype(str)), "dtype <U"),
]
STATE_CASES = [   # (kind, name, change, fragment)
    ("rbm", "chains not binary", _array("state/chains", _set((0, 0), 0.5)), "chains holds values other than 0"),
    ("rbm", "chains NaN", _array("state/chains", _set((0, 0), np.nan)), "chains holds non-finite"),
    ("rbm", "chains of another width", _array("state/chains", lambda a: a[:, :5]), "state chains has shape"),
    ("rbm", "chains 1-D", _array("state/chains", lambda a: a[0]), "state chains has shape"),
    ("rbm", "hidden states of fewer chains", _array("state/chain_hidden", lambda a: a[:2]), "chain_hidden has shape"),
    ("rbm", "hidden states not binary", _array("state/chain_hidden", _set((0, 0), 2.0)), "chain_hidden holds values"),
    ("rbm", "hidden states without chains", _array("state/chains", _DELETE), "chain_hidden (the chains' hidden"),
    ("rbm", "sparsity average beyond 1", _array("state/sparsity_q", _set(0, 1.5)), "sparsity_q holds values outside"),
    ("rbm", "sparsity average of another size", _array("state/sparsity_q", lambda a: a[:1]), "sparsity_q has shape"),
    ("rbm", "an unknown state", _array("state/momentum", lambda a: np.zeros(3)), "unknown state ['momentum']"),
    ("hm", "sleep chains not binary", _array("state/prior_chains", _set((0, 0), 0.3)), "prior_chains holds values"),
    ("hm", "sleep chains of another width", _array("state/prior_chains", lambda a: a[:, :2]), "prior_chains has"),
    ("hm", "sleep chains infinite", _array("state/prior_chains", _set((0, 0), np.inf)), "prior_chains holds non-finite"),
    ("vae", "state for a stateless model", _array("state/chains", lambda a: np.zeros((2, 8))), "keeps no state"),
]
OPTIMIZER_CASES = [   # (kind, name, change, fragment): refused on resume
    ("vae", "a moment missing", _array("optimizer/m_sum/encoder.0.W", _DELETE), "slot 'm_sum'.*missing"),
    ("vae", "a slot missing", lambda a, m: ({k: v for k, v in a.items() if "v_sum" not in k}, m), "slot 'v_sum'"),
    ("vae", "a moment NaN", _array("optimizer/m_sum/encoder.0.W", _set((0, 0), np.nan)), "non-finite values"),
    ("vae", "a second moment negative", _array("optimizer/v_sum/encoder.0.b", _set(0, -1.0)), "negative values"),
    ("vae", "a moment of another shape", _array("optimizer/m_sum/encoder.0.W", lambda a: a.T.copy()), "wrong shapes"),
    ("vae", "a moment of integers", _array("optimizer/m_sum/encoder.0.b", lambda a: a.astype(np.int64)), "not floating"),
    ("vae", "a moment of an unknown parameter", _array("optimizer/m_sum/nope", lambda a: np.zeros(2)), "unexpected"),
    ("vae", "an unknown slot", _array("optimizer/velocity/encoder.0.b", lambda a: np.zeros(4)), r"slots \['velocity'\]"),
    ("vae", "an entry without a slot", _array("optimizer/m_sum", lambda a: np.zeros(4)), "not named <slot>/<parameter>"),
    ("vae", "slots before the first step", _meta(training__optimizer__t=0), "after 0 steps"),
    ("rbm", "a velocity missing", _array("optimizer/velocity/W", _DELETE), "slot 'velocity'.*missing"),
    ("rbm", "a velocity infinite", _array("optimizer/velocity/c", _set(0, np.inf)), "non-finite values"),
    ("hm", "a moment of another shape", _array("optimizer/v_sum/prior.W", lambda a: a[:1]), "wrong shapes"),
]


def _config_cases():
    """Every field of every kind's config given a value of another JSON type: refused, naming the field."""
    configs = {"vae": GaussianVAE(8, 2, hidden=(4,)).config,
               "rbm": BernoulliRBM(8, 3, sparsity_target=0.1).config,
               "hm": HelmholtzMachine((8, 4, 3), prior="rbm").config}
    cases = []
    for kind, config in configs.items():
        for field, value in config.items():
            if isinstance(value, bool):
                wrong = ["no", 1, [True]]
            elif isinstance(value, int):
                wrong = ["3", 1.5, True, [value], {}]
            elif isinstance(value, float):
                wrong = ["0.5", True, [value], {}]
            elif isinstance(value, str):
                wrong = [5, True, [value], {}]
            elif isinstance(value, list):
                wrong = ["abc", [1.5] * len(value), [True] * len(value), [str(value[0])] + value[1:], {}]
            else:                                          # None: the default (n_chains, ...); any other type
                wrong = ["abc", True, [1], {}]
            cases += [pytest.param(kind, field, w, id=f"{kind}-{field}={w!r}") for w in wrong]
    return cases


# ------------------------------------------------------------------------------------------------
def _refused_on_load(tmp_path, good, kind, change, fragment):
    arrays, meta = good[kind]
    arrays, meta = change(dict(arrays), json.loads(json.dumps(meta)))
    path = _write(tmp_path / "bad.npz", arrays, meta)
    with refvae.use_backend("numpy"), pytest.raises(CheckpointError, match=fragment) as caught:
        refvae.load(path)
    assert "\n" not in str(caught.value)
    return caught.value


def _refused_on_resume(tmp_path, good, kind, change, fragment):
    arrays, meta = good[kind]
    arrays, meta = change(dict(arrays), json.loads(json.dumps(meta)))
    path = _write(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(CheckpointError, match=fragment) as caught:
        _train(kind, path, epochs=2, resume=True)
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize("name,change,fragment", DOCUMENT_CASES + TRAINING_CASES,
                         ids=[c[0] for c in DOCUMENT_CASES + TRAINING_CASES])
@pytest.mark.parametrize("kind", list(RUNS))
def test_a_malformed_document_is_refused_naming_the_field(tmp_path, good, kind, name, change, fragment):
    _refused_on_load(tmp_path, good, kind, change, _escape(fragment))


@pytest.mark.parametrize("name,change,fragment", TRAINING_CASES, ids=[c[0] for c in TRAINING_CASES])
def test_a_malformed_training_state_is_refused_on_resume(tmp_path, good, name, change, fragment):
    _refused_on_resume(tmp_path, good, "vae", change, _escape(fragment))


@pytest.mark.parametrize("kind,field,value", _config_cases())
def test_every_config_field_of_another_type_is_refused_naming_it(tmp_path, good, kind, field, value):
    _refused_on_load(tmp_path, good, kind, _meta(**{f"config__{field}": value}), field.replace("_", "[_ ]"))


@pytest.mark.parametrize("name,change,fragment", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
@pytest.mark.parametrize("kind", list(RUNS))
def test_bad_parameter_arrays_are_refused(tmp_path, good, kind, name, change, fragment):
    _refused_on_load(tmp_path, good, kind, change(kind), _escape(fragment))
    _refused_on_resume(tmp_path, good, kind, change(kind), _escape(fragment))


@pytest.mark.parametrize("kind,name,change,fragment", STATE_CASES, ids=[c[1] for c in STATE_CASES])
def test_bad_state_arrays_are_refused(tmp_path, good, kind, name, change, fragment):
    _refused_on_load(tmp_path, good, kind, change, _escape(fragment))
    _refused_on_resume(tmp_path, good, kind, change, _escape(fragment))


@pytest.mark.parametrize("kind,name,change,fragment", OPTIMIZER_CASES, ids=[c[1] for c in OPTIMIZER_CASES])
def test_a_bad_optimiser_state_is_refused_on_resume(tmp_path, good, kind, name, change, fragment):
    error = _refused_on_resume(tmp_path, good, kind, change, fragment)
    assert str(tmp_path / "bad.npz") in str(error)


@pytest.mark.parametrize("kind,config", [
    ("vae", {"x_dim": 10**9}), ("vae", {"z_dim": 10**9}), ("vae", {"hidden": [10**9]}),
    ("vae", {"hidden": [4] * 10**6}), ("rbm", {"n_hidden": 10**12}), ("rbm", {"n_visible": 10**9}),
    ("hm", {"layer_sizes": [8, 4] + [3] * 10**6}), ("hm", {"rbm_hidden": 10**9}), ("hm", {"layer_sizes": [8, 10**9]}),
])
def test_a_config_of_huge_sizes_is_refused_before_the_model_is_built(tmp_path, good, kind, config):
    """The config describes far more parameters than the file holds: refused without allocating them."""
    change = _meta(**{f"config__{k}": v for k, v in config.items()})
    tracemalloc.start()
    try:
        error = _refused_on_load(tmp_path, good, kind, change, "the config and the arrays disagree")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert next(iter(config)) in str(error)
    assert peak < 200 * 2**20          # the document of a million layers is a few MiB; the model would be GiB


def test_the_parameter_sizes_of_each_model_are_those_it_allocates():
    """parameter_sizes (what check_config compares with the file) counts the constructor's arrays exactly."""
    models = [GaussianVAE(6, 2, hidden=(4,)), GaussianVAE(6, 3, hidden=(5, 4), decoder_hidden=(7,)),
              GaussianVAE(6, 2, hidden=(), likelihood="gaussian", decoder_variance="shared"),
              GaussianVAE(6, 2, hidden=(3,), likelihood="gaussian", decoder_variance="per-dimension", prior="learned"),
              GaussianVAE(6, 2, hidden=(3,), likelihood="gaussian"), GaussianVAE(6, 2, hidden=(3,), decoder_hidden=()),
              BernoulliRBM(5, 3), HelmholtzMachine((6, 4, 2)), HelmholtzMachine((6, 4, 3), prior="rbm"),
              HelmholtzMachine((6, 20), prior="rbm", rbm_hidden=5)]
    for model in models:
        assert sorted(type(model).parameter_sizes(model.config)) == sorted(v.size for v in model.params.values())


def _escape(fragment):
    return "".join("\\" + c if c in "[]().*?+" else c for c in fragment)


# ------------------------------------------------------------------------------------------------
# the archive: declared sizes checked before any data is read
# ------------------------------------------------------------------------------------------------
def _zip_bomb(path, good, n_bytes=64 * 2**20):
    """A VAE checkpoint whose encoder weights are ``n_bytes`` of zeros, deflated to a few dozen KiB."""
    arrays, meta = good["vae"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__meta__.npy", _npy(np.array(json.dumps(meta))))
        for name, a in arrays.items():
            if name != PARAMETER["vae"]:
                z.writestr(name + ".npy", _npy(a))
        with z.open(PARAMETER["vae"] + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                     "shape": (n_bytes // 8,)})
            chunk = bytes(2**20)
            for _ in range(n_bytes // len(chunk)):
                f.write(chunk)
    return path


def _npy(a):
    import io
    buffer = io.BytesIO()
    np.save(buffer, a, allow_pickle=False)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_from_its_directory_without_reading_it(tmp_path, good):
    path = _zip_bomb(tmp_path / "bomb.npz", good)
    assert path.stat().st_size < 2**20                      # 64 MiB declared in a file of a few dozen KiB
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(CheckpointError, match=r"declares 6\d\.\d MiB of arrays in a file of 0\.\d\d MiB.*zip bomb"):
            refvae.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20                                 # nothing near the 64 MiB was allocated
    assert time.perf_counter() - t0 < 1.0


def test_declared_sizes_are_checked_against_each_header_before_reading(tmp_path, good, monkeypatch):
    arrays, meta = good["vae"]
    # a header declaring a terabyte, in a member of a few bytes
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__meta__.npy", _npy(np.array(json.dumps(meta))))
        with z.open(PARAMETER["vae"] + ".npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**13,)})
    with pytest.raises(CheckpointError, match=r"declares shape \(10000000000000,\) of float64 \(80000000000000 bytes\)"):
        refvae.load(path)
    # the total beyond MAX_CHECKPOINT_BYTES (lowered here, for a file of honest sizes)
    path = _write(tmp_path / "big.npz", arrays, meta)
    monkeypatch.setattr(validation, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(CheckpointError, match="at most 0 GiB in all"):
        refvae.load(path)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("name,write,fragment", [
    ("a member that is not .npy", lambda z, meta: z.writestr("README.txt", "hello"), "README.txt' that is not a .npy"),
    ("an object array (pickled)", lambda z, meta: z.writestr("model/x.npy", _pickled_npy()), "dtype object"),
    ("a duplicate member", lambda z, meta: z.writestr("__meta__.npy", _npy(np.array(json.dumps(meta)))), "twice"),
    ("a __meta__ of numbers", None, "dtype int64, a checkpoint holds one text"),
    ("a __meta__ of many texts", None, "not one text"),
    ("a header that is not .npy", lambda z, meta: z.writestr("model/y.npy", b"\x93NUMPY\x09\x00junk"),
     "has no valid .npy header"),
])
def test_a_foreign_archive_is_refused_from_its_headers(tmp_path, good, name, write, fragment):
    arrays, meta = good["vae"]
    path = tmp_path / "foreign.npz"
    with zipfile.ZipFile(path, "w") as z:
        if name == "a __meta__ of numbers":
            z.writestr("__meta__.npy", _npy(np.arange(3)))
        elif name == "a __meta__ of many texts":
            z.writestr("__meta__.npy", _npy(np.array([json.dumps(meta)] * 2)))
        else:
            z.writestr("__meta__.npy", _npy(np.array(json.dumps(meta))))
            write(z, meta)
    with pytest.raises(CheckpointError, match=_escape(fragment)):
        refvae.load(path)


def _pickled_npy():
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def test_a_document_beyond_its_limit_is_refused_unread(tmp_path, good, monkeypatch):
    arrays, meta = good["vae"]
    path = _write(tmp_path / "m.npz", arrays, meta)
    monkeypatch.setattr(validation, "MAX_META_BYTES", 100)
    with pytest.raises(CheckpointError, match=r"'__meta__' entry is \d+ bytes of shape \(\), not one text of at most"):
        refvae.load(path)


@pytest.mark.parametrize("name,content,fragment", [
    ("metrics.json", b'{"test": {"elbo": -90.0}}', "a JSON file (such as metrics.json)"),
    ("report.md", b"# report\n", "a text file"),
    ("x.npy", _npy(np.zeros(3)), "a single .npy array"),
    ("x.pkl", pickle.dumps({"W": [1.0]}), "a Python pickle, which refvae never loads"),
    ("empty.npz", b"", "empty"),
    ("noise.npz", bytes(range(256)), "of another format, not an .npz archive"),
])
def test_a_file_that_is_not_a_checkpoint_says_so_and_what_to_pass(tmp_path, name, content, fragment):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError, match=_escape(fragment)) as caught:
        refvae.load(tmp_path / name)
    message = str(caught.value)
    assert "is not a refvae checkpoint" in message and "pass the checkpoint.npz" in message
    assert "allow_pickle" not in message and "\n" not in message


def test_evaluate_prints_one_line_and_exits_2_for_bad_checkpoints(tmp_path, good, capsys):
    arrays, meta = good["vae"]
    files = {"metrics.json": "a JSON file",
             "list.npz": "JSON list",
             "nan.npz": "non-finite parameters",
             "config.npz": "config field seed",
             "bomb.npz": "zip bomb"}
    (tmp_path / "metrics.json").write_text('{"test": {}}')
    _write(tmp_path / "list.npz", arrays, "[]")
    _write(tmp_path / "nan.npz", {**arrays, PARAMETER["vae"]: _set((0, 0), np.nan)(arrays[PARAMETER["vae"]])}, meta)
    _write(tmp_path / "config.npz", arrays, {**meta, "config": {**meta["config"], "seed": 1.5}})
    _zip_bomb(tmp_path / "bomb.npz", good)
    for name, fragment in files.items():
        with refvae.use_backend("numpy"):
            assert main(["evaluate", str(tmp_path / name), "--test-size", "10"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("refvae: error: ") and fragment in err, err
        assert "allow_pickle" not in err and "Traceback" not in err


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
@pytest.mark.parametrize("seed", range(20))
def test_a_checkpoint_damaged_anywhere_is_refused_with_a_checkpoint_error(tmp_path, good, compressed, seed):
    """A few bytes changed at random places (the zip's headers, the .npy headers, the data, the document): the
    file loads (the change hit nothing that matters) or is refused with a CheckpointError, never anything else."""
    arrays, meta = good["rbm"]
    path = tmp_path / "m.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays, __meta__=np.array(json.dumps(meta)))
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for i in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
        data[i] = int(rng.integers(0, 256))
    path.write_bytes(bytes(data))
    with refvae.use_backend("numpy"):
        try:
            refvae.load(path)
        except CheckpointError as err:
            assert "\n" not in str(err)
