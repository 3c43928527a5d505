"""The scikit-learn estimator interface of the three models (refvae/estimator.py), against scikit-learn's own
conventions: its check_estimator, clone, Pipeline and GridSearchCV. scikit-learn is a test dependency only: the
tests that need it skip without it, and one test runs the interface with scikit-learn made unimportable."""

import copy
import itertools
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import refvae
from rbm import BernoulliRBM
from refvae.estimator import NotFittedError
from wakesleep import HelmholtzMachine

try:
    import sklearn
except ImportError:          # the interface needs no scikit-learn; these tests do
    sklearn = None


def _sklearn_skip_reason():
    if sklearn is None:
        return "scikit-learn is not installed (pip install 'refvae[test]')"
    if tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 6):
        return f"scikit-learn {sklearn.__version__} predates its tags API (1.6): pip install 'scikit-learn>=1.6'"
    return None


needs_sklearn = pytest.mark.skipif(_sklearn_skip_reason() is not None, reason=str(_sklearn_skip_reason()))
ROOT = Path(__file__).resolve().parents[1]


def _binary(n=40, d=6, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.4).astype(np.float64)


def _rbm(**kw):
    return BernoulliRBM(**{"n_hidden": 3, "epochs": 2, "batch_size": 10, **kw})


def _machine(**kw):
    return HelmholtzMachine(**{"layer_sizes": (None, 3, 2), "epochs": 2, "batch_size": 10, **kw})


def _vae(**kw):
    return refvae.GaussianVAE(**{"z_dim": 2, "hidden": (4,), "epochs": 2, "batch_size": 10, **kw})


# ------------------------------------------------------------------------------------------------------
# scikit-learn's check_estimator: every check passes but these, which cannot apply, each for its reason
# ------------------------------------------------------------------------------------------------------
CANNOT_APPLY = {
    "check_no_attributes_set_in_init": "the models keep their state in public attributes set by the constructor "
                                       "(params, rng, backend, chains), which refvae.fit and the checkpoints read",
    "check_dont_overwrite_parameters": "fit replaces that public state (params, rng, chains) instead of adding "
                                       "attributes ending in _",
    "check_do_not_raise_errors_in_init_or_set_params": "a model is valid from its construction: the constructor "
                                                       "and set_params refuse a bad setting at once",
    "check_complex_data": "complex data are refused by the one validator, refvae.validation.as_data, in its own "
                          "words rather than scikit-learn's",
}
UNIT_INTERVAL = {"check_positive_only_tag_during_fit": "data outside [0, 1], negative ones included, are refused "
                                                        "by refvae.validation.as_data in its own words"}
IMPORTANCE_WEIGHTED = {
    name: "score_samples is an importance-weighted estimate whose noise is drawn for the batch as a whole: the same "
          "row in another batch gets other draws"
    for name in ("check_methods_sample_order_invariance", "check_methods_subset_invariance")
}

CHECKED = [
    pytest.param(_rbm, {**CANNOT_APPLY, **UNIT_INTERVAL}, True, id="BernoulliRBM"),
    pytest.param(_machine, {**CANNOT_APPLY, **UNIT_INTERVAL}, True, id="HelmholtzMachine"),
    pytest.param(_vae, {**CANNOT_APPLY, **UNIT_INTERVAL, **IMPORTANCE_WEIGHTED}, True, id="GaussianVAE-bernoulli"),
    pytest.param(lambda: _vae(likelihood="gaussian"), {**CANNOT_APPLY, **IMPORTANCE_WEIGHTED}, False,
                 id="GaussianVAE-gaussian"),
]


def _unit_interval_inputs(monkeypatch):
    """scikit-learn's checks make data for a ``positive_only`` estimator by shifting it to X - X.min(), which still
    exceeds 1; a Bernoulli model refuses that (it has no tag for [0, 1]). Scale the checks' data into [0, 1]."""
    import sklearn.utils.estimator_checks as checks

    shift = checks._enforce_estimator_tags_X

    def into_unit_interval(estimator, X, X_test=None, **kw):
        scale = lambda A: (A - A.min()) / max(A.max() - A.min(), 1e-12) if A.size else A   # noqa: E731
        if X_test is None:
            return scale(shift(estimator, X, **kw))
        X, X_test = shift(estimator, X, X_test, **kw)
        return scale(X), scale(X_test)

    monkeypatch.setattr(checks, "_enforce_estimator_tags_X", into_unit_interval)


@needs_sklearn
@pytest.mark.parametrize("make, expected_failures, unit_interval", CHECKED)
def test_check_estimator_passes_every_check_that_applies(numpy_backend, monkeypatch, make, expected_failures,
                                                         unit_interval):
    from sklearn.utils.estimator_checks import check_estimator

    if unit_interval:
        _unit_interval_inputs(monkeypatch)
    results = check_estimator(make(), expected_failed_checks=expected_failures, on_fail=None, on_skip=None)
    status = {}
    for r in results:
        status.setdefault(r["check_name"], set()).add(r["status"])
    failed = {name for name, s in status.items() if "failed" in s}
    assert not failed, {r["check_name"]: repr(r["exception"]) for r in results if r["status"] == "failed"}
    # the list stays honest: each check said not to apply does fail
    assert {name for name, s in status.items() if "xfail" in s} == set(expected_failures)
    skipped = {name for name, s in status.items() if "skipped" in s}
    assert skipped <= {"check_array_api_input"}, skipped          # skipped without SCIPY_ARRAY_API=1
    assert len([name for name, s in status.items() if s == {"passed"}]) >= 38


# ------------------------------------------------------------------------------------------------------
# What the estimator methods compute
# ------------------------------------------------------------------------------------------------------
def _set_random(model, scale=0.5, seed=0):
    rng = np.random.default_rng(seed)
    model.set_params({k: scale * rng.normal(size=tuple(v.shape)) for k, v in model.params.items()})
    return model


def _states(d):
    """All 2^d binary rows, (2^d, d)."""
    return np.array(list(itertools.product([0.0, 1.0], repeat=d)))


def test_rbm_score_samples_is_the_exact_log_likelihood_by_enumerating_both_layers(numpy_backend):
    model = _set_random(BernoulliRBM(4, 3, dtype="float64"), scale=0.8)
    W, b, c = (np.asarray(model.params[k]) for k in ("W", "b", "c"))
    V, H = _states(4), _states(3)
    neg_energy = V @ b[:, None] + (H @ c)[None, :] + V @ W @ H.T         # -E(v, h), (16, 8)
    log_joint = np.logaddexp.reduce(neg_energy, axis=1)                # log sum_h exp(-E(v, h)), (16,)
    expected = log_joint - np.logaddexp.reduce(log_joint)
    np.testing.assert_allclose(model.score_samples(V), expected, rtol=0, atol=1e-12)
    assert model.score(V) == pytest.approx(expected.mean(), abs=1e-12)
    assert isinstance(model.score_samples(V), np.ndarray)


def test_rbm_score_samples_of_a_large_model_uses_ais_from_a_fresh_generator(numpy_backend, monkeypatch):
    monkeypatch.setattr("rbm.model.MAX_EXACT_TRAINING", 2)             # a 6 x 4 model counts as large
    model = _set_random(BernoulliRBM(6, 4, dtype="float64", seed=3), scale=0.5)
    X = _binary(8, 6)
    before = copy.deepcopy(model)
    methods, log_partition = [], BernoulliRBM.log_partition
    monkeypatch.setattr(BernoulliRBM, "log_partition",
                        lambda self, method="exact", **kw: methods.append(method) or log_partition(self, method, **kw))
    scores = model.score_samples(X)
    assert methods == ["ais"]                                           # log Z by AIS, not enumeration
    np.testing.assert_array_equal(model.score_samples(X), scores)      # the same estimate every time
    exact = np.asarray(model.log_likelihood(X))
    assert np.ptp(scores - exact) < 1e-9                                # only log Z is estimated
    assert abs(float(np.mean(scores - exact))) < 0.05                   # and AIS gets it right
    assert model.rng.uniform((4,), "float64").tolist() == before.rng.uniform((4,), "float64").tolist()


def test_helmholtz_score_samples_is_the_exact_log_likelihood_and_sums_to_one(numpy_backend):
    model = _set_random(HelmholtzMachine((4, 3, 2), dtype="float64"), scale=0.8)
    X = _states(4)
    scores = model.score_samples(X)
    np.testing.assert_allclose(scores, np.asarray(model.log_likelihood(X)), rtol=0, atol=1e-12)
    assert np.exp(scores).sum() == pytest.approx(1.0, abs=1e-12)


def test_transform_is_the_posterior_mean_in_numpy(numpy_backend):
    X = _binary(5, 4)
    rbm = _set_random(BernoulliRBM(4, 3, dtype="float64"))
    W, c = np.asarray(rbm.params["W"]), np.asarray(rbm.params["c"])
    np.testing.assert_allclose(rbm.transform(X), 1 / (1 + np.exp(-(X @ W + c))), rtol=1e-12)
    np.testing.assert_array_equal(rbm.components_, W.T)                                            # sklearn's names
    np.testing.assert_array_equal(rbm.intercept_hidden_, c)
    np.testing.assert_array_equal(rbm.intercept_visible_, np.asarray(rbm.params["b"]))
    machine = _set_random(HelmholtzMachine((4, 3, 2), dtype="float64"))
    R, r = np.asarray(machine.params["rec.1.W"]), np.asarray(machine.params["rec.1.b"])
    np.testing.assert_allclose(machine.transform(X), 1 / (1 + np.exp(-(X @ R + r))), rtol=1e-12)   # Q(h_1 | x)
    vae = refvae.GaussianVAE(4, 2, hidden=(3,), dtype="float64")
    np.testing.assert_array_equal(vae.transform(X), np.asarray(vae.encode(X)[0]))                  # mu(x)


@pytest.mark.parametrize("make", [lambda: _set_random(BernoulliRBM(4, 3)), lambda: HelmholtzMachine((4, 6, 2)),
                                  lambda: refvae.GaussianVAE(4, 2, hidden=(3,))], ids=["rbm", "helmholtz", "vae"])
def test_queries_never_write_onto_the_model(numpy_backend, make):
    model, X = make(), _binary(6, 4)
    before = copy.deepcopy(model)
    first = (model.transform(X), model.score_samples(X), model.score(X))
    second = (model.transform(X), model.score_samples(X), model.score(X))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for name, value in before.params.items():
        np.testing.assert_array_equal(np.asarray(model.params[name]), np.asarray(value))
    assert model.rng.uniform((4,), "float32").tolist() == before.rng.uniform((4,), "float32").tolist()


def test_the_estimator_methods_return_numpy_on_every_backend(backend):
    model = _rbm(dtype="float64").fit(_binary())
    assert type(model.transform(_binary(3))) is np.ndarray and model.transform(_binary(3)).shape == (3, 3)
    assert type(model.score_samples(_binary(3))) is np.ndarray


# ------------------------------------------------------------------------------------------------------
# fit and partial_fit: thin layers over refvae.fit and its train_step
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rbm", "helmholtz", "vae"])
def test_fit_is_the_documented_refvae_fit_call(numpy_backend, kind):
    X = _binary(30, 5)
    if kind == "rbm":
        estimator, model = _rbm(seed=4), BernoulliRBM(5, 3, seed=4)
        model.init_visible_bias(X)
        optimizer = refvae.SGD(0.01, momentum=0.9)
    elif kind == "helmholtz":
        estimator, model = _machine(seed=4), HelmholtzMachine((5, 3, 2), seed=4)
        optimizer = refvae.SGD(0.1, momentum=0.9)
    else:
        estimator, model = _vae(seed=4), refvae.GaussianVAE(5, 2, hidden=(4,), seed=4)
        optimizer = refvae.Adam(1e-3)
    assert estimator.fit(X) is estimator and estimator.n_features_in_ == 5
    history = refvae.fit(model, X, epochs=2, batch_size=10, optimizer=optimizer, seed=4, progress=False)
    assert {k: v for k, v in estimator.history_.items() if k != "seconds"} == \
        {k: v for k, v in history.items() if k != "seconds"}
    for name, value in model.params.items():
        np.testing.assert_array_equal(np.asarray(estimator.params[name]), np.asarray(value))


def test_fit_starts_again_and_learns_each_width(numpy_backend):
    model = _rbm()
    first = model.fit(_binary(d=6)).transform(_binary(4, 6))
    np.testing.assert_array_equal(model.fit(_binary(d=6)).transform(_binary(4, 6)), first)      # idempotent
    assert model.fit(_binary(d=9)).n_features_in_ == 9 and model.get_params()["n_visible"] is None
    with pytest.raises(ValueError, match="X has 6 features, but BernoulliRBM is expecting 9 features"):
        model.transform(_binary(4, 6))
    with pytest.raises(ValueError, match="X has 4 features, but BernoulliRBM is expecting 6"):
        BernoulliRBM(6, 3).fit(_binary(d=4))                    # a width given to the constructor is kept


def test_an_unfitted_model_says_so(numpy_backend):
    model = _rbm()
    assert not hasattr(model, "n_features_in_")
    with pytest.raises(NotFittedError, match="call fit"):
        model.transform(_binary())
    assert BernoulliRBM(6, 3).n_features_in_ == 6               # built with its width: ready, as before


def test_partial_fit_is_one_pass_over_the_batch(numpy_backend, monkeypatch):
    import refvae.train

    steps, train_step = [], refvae.train.train_step

    def spy(model, optimizer, batch, rng, *args):
        steps.append(np.asarray(batch))
        return train_step(model, optimizer, batch, rng, *args)

    monkeypatch.setattr(refvae.train, "train_step", spy)
    X = np.unique(_binary(25, 6, seed=1), axis=0)                # distinct rows, to see that each is used once
    model = _rbm(batch_size=4).partial_fit(X)
    assert [len(s) for s in steps] == [4] * (len(X) // 4) + ([len(X) % 4] if len(X) % 4 else [])
    assert sorted(map(tuple, np.concatenate(steps))) == sorted(map(tuple, X))
    assert model.n_features_in_ == 6
    once = {k: np.asarray(v).copy() for k, v in model.params.items()}
    model.partial_fit(X)                                         # continues from there
    assert not np.array_equal(np.asarray(model.params["W"]), once["W"])
    again = _rbm(batch_size=4).partial_fit(X).partial_fit(X)     # and the same calls give the same model
    np.testing.assert_array_equal(np.asarray(again.params["W"]), np.asarray(model.params["W"]))
    with pytest.raises(ValueError, match="X has 5 features, but BernoulliRBM is expecting 6"):
        model.partial_fit(_binary(d=5))


# ------------------------------------------------------------------------------------------------------
# get_params, set_params, clone, pickle
# ------------------------------------------------------------------------------------------------------
def test_get_params_are_the_arguments_as_given(numpy_backend):
    hidden = [5]
    model = refvae.GaussianVAE(z_dim=2, hidden=hidden, epochs=3)
    params = model.get_params()
    assert params["hidden"] is hidden and params["x_dim"] is None and params["epochs"] == 3
    assert set(params) == set(refvae.GaussianVAE(4, 2).get_params())
    assert "epochs" not in model.fit(_binary(d=4)).config             # training settings are not the model's


def test_set_params_keeps_what_was_learnt_unless_the_model_changes(numpy_backend):
    model = _rbm().fit(_binary())
    W = np.asarray(model.params["W"]).copy()
    assert model.set_params(epochs=5, learning_rate=0.05) is model
    np.testing.assert_array_equal(np.asarray(model.params["W"]), W)
    assert (model.epochs, model.learning_rate) == (5, 0.05) and model.get_params()["epochs"] == 5
    model.set_params(n_hidden=4)                                       # another model: unfitted again
    assert model.n_hidden == 4 and not hasattr(model, "n_features_in_") and not hasattr(model, "history_")


@pytest.mark.parametrize("settings, match", [({"n_hidden": -1}, "n_hidden must be a positive integer"),
                                             ({"learning_rate": float("nan")}, "learning_rate must be"),
                                             ({"seed": float("inf")}, "invalid setting"),
                                             ({"n_hiden": 4}, "invalid parameter 'n_hiden'.*valid parameters")])
def test_set_params_refuses_a_bad_setting_and_leaves_the_model_unchanged(numpy_backend, settings, match):
    model = _rbm().fit(_binary())
    before, W = model.get_params(), np.asarray(model.params["W"]).copy()
    with pytest.raises(ValueError, match=match):
        model.set_params(**settings)
    assert model.get_params() == before
    np.testing.assert_array_equal(np.asarray(model.params["W"]), W)


def test_set_params_with_a_dict_still_replaces_the_arrays(numpy_backend):
    model = BernoulliRBM(4, 3, dtype="float64")
    model.set_params({"W": np.ones((4, 3)), "b": np.zeros(4), "c": np.zeros(3)})
    np.testing.assert_array_equal(np.asarray(model.params["W"]), np.ones((4, 3)))
    with pytest.raises(TypeError, match="not both"):
        model.set_params({"W": np.ones((4, 3))}, k=2)


@pytest.mark.parametrize("make", [_rbm, _machine, _vae], ids=["rbm", "helmholtz", "vae"])
def test_a_pickled_model_gives_the_same_answers(numpy_backend, make):
    model, X = make().fit(_binary(20, 4)), _binary(5, 4)
    copy_ = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy_.transform(X), model.transform(X))
    np.testing.assert_array_equal(copy_.score_samples(X), model.score_samples(X))
    assert copy_.get_params() == model.get_params()


@needs_sklearn
def test_clone_gives_the_unfitted_model_that_fit_makes_the_same(numpy_backend):
    from sklearn.base import clone

    model = _rbm(seed=2).fit(_binary())
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "n_features_in_")
    np.testing.assert_array_equal(twin.fit(_binary()).transform(_binary(3)), model.transform(_binary(3)))


# ------------------------------------------------------------------------------------------------------
# Use with scikit-learn
# ------------------------------------------------------------------------------------------------------
@needs_sklearn
def test_pipeline_rbm_features_into_logistic_regression_on_mnist(numpy_backend):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    (x, y), (xt, yt) = refvae.datasets.load("mnist-10k", labels=True)
    pipeline = Pipeline([("rbm", BernoulliRBM(n_hidden=32, epochs=3, batch_size=20)),
                         ("logistic", LogisticRegression(max_iter=500))])
    pipeline.fit(x[:1000], y[:1000])
    assert pipeline.named_steps["rbm"].transform(xt[:5]).shape == (5, 32)
    assert pipeline.score(xt[:500], yt[:500]) > 0.45               # chance is 0.1 (measured: 0.58)


@needs_sklearn
def test_grid_search_picks_a_model_by_its_log_likelihood(numpy_backend):
    from sklearn.model_selection import GridSearchCV

    (x, _), _ = refvae.datasets.load("bars", labels=True)
    search = GridSearchCV(BernoulliRBM(epochs=5, batch_size=10, learning_rate=0.1), {"n_hidden": [1, 8]}, cv=3)
    search.fit(x)
    scores = search.cv_results_["mean_test_score"]                     # mean held-out log P(x), nats
    assert all(math.isfinite(s) and s < 0 for s in scores)
    assert search.best_params_ == {"n_hidden": 8}


def test_the_interface_needs_no_scikit_learn():
    code = ("import sys; sys.modules['sklearn'] = None\n"            # import sklearn now raises ImportError
            "import numpy as np; from rbm import BernoulliRBM\n"
            "X = (np.random.default_rng(0).random((20, 5)) < 0.5).astype(float)\n"
            "m = BernoulliRBM(n_hidden=3, epochs=1, batch_size=10).fit(X).partial_fit(X)\n"
            "print(m.transform(X).shape, m.score_samples(X).shape, m.set_params(k=2).get_params()['k'])\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(20,", "3)", "(20,)", "2"]
