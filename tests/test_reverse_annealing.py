"""RAISE (rbm/reverse_annealing.py): its weight is unbiased for the annealing model's p_ann(x), computed here exactly
by enumerating a tiny RBM's transition matrices; it approaches the exact log P(x) from below as the annealing
slows; its implied log Z brackets the exact one with AIS's."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import expit

import refvae
from rbm import BernoulliRBM, raise_log_likelihood
from rbm.partition import base_rate_biases


def _all_binary(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.float64)


def _tiny_rbm(nv=4, nh=3, seed=3, scale=1.5):
    model = BernoulliRBM(nv, nh, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    model.set_params({"W": scale * rng.normal(size=(nv, nh)), "b": 0.5 * rng.normal(size=nv),
                      "c": 0.5 * rng.normal(size=nh)})
    return model


def _bernoulli_probs(states, p):
    """P(states) under independent Bernoulli(p) rows: states (S, n), p (..., n) -> (..., S)."""
    return np.prod(np.where(states[None] == 1, p[:, None, :], 1 - p[:, None, :]), axis=-1)


def _sweep_matrix(W, b, c, b_a, beta):
    """T(v' | v) of one Gibbs sweep at beta, v -> h -> v', as a (2^nv, 2^nv) matrix (rows: v)."""
    V, H = _all_binary(W.shape[0]), _all_binary(W.shape[1])
    p_h = _bernoulli_probs(H, expit(beta * (V @ W + c)))                       # (2^nv, 2^nh): P(h | v)
    p_v = _bernoulli_probs(V, expit((1 - beta) * b_a + beta * (H @ W.T + b)))  # (2^nh, 2^nv): P(v' | h)
    return p_h @ p_v


def _p_ann(model, b_a, betas):
    """The annealing model's law of v_K: p_A T_1 ... T_K, exactly, (2^nv,)."""
    B = refvae.get_backend()
    W, b, c = (B.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    V = _all_binary(W.shape[0])
    p = _bernoulli_probs(V, expit(b_a)[None])[0]
    for beta in betas[1:]:
        p = p @ _sweep_matrix(W, b, c, b_a, beta)
    return p


@pytest.mark.parametrize("betas", [[0.0, 1.0], [0.0, 0.3, 0.7, 1.0]])
def test_the_weight_is_unbiased_for_the_annealing_model(backend, betas):
    """mean_s w over many reverse chains from x estimates p_ann(x) = sum p_A(v_0) T_1(v_1|v_0) ... T_K(x|v_{K-1})
    within 4 standard errors, for every x of a 4-visible RBM."""
    model = _tiny_rbm()
    data = np.array([[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float64)
    b_a = np.asarray(backend.to_numpy(base_rate_biases(model, backend.asarray(data))))
    exact = _p_ann(model, b_a, betas)
    assert abs(exact.sum() - 1) < 1e-12
    X = _all_binary(4)
    S = 4000
    est = raise_log_likelihood(model, backend.asarray(X), n_chains=S, betas=betas, data=backend.asarray(data), seed=1)
    # log_p is log mean_s w: back to mean w, and its standard error from a second, per-chain look
    mean_w = np.exp(est.log_p)
    from rbm.reverse_annealing import raise_log_weights
    log_z_a = float(np.sum(np.logaddexp(0, b_a))) + model.n_hidden * math.log(2)
    log_w = backend.to_numpy(raise_log_weights(model, backend.asarray(X), betas, backend.asarray(b_a), S,
                                               backend.rng(2))) - log_z_a
    w = np.exp(log_w)
    se = w.std(axis=1, ddof=1) / math.sqrt(S)
    assert np.all(np.abs(w.mean(axis=1) - exact) < 4 * se + 1e-12), (w.mean(axis=1), exact, se)
    assert np.all(np.abs(mean_w - exact) < 4 * se + 1e-12), (mean_w, exact, se)


def test_one_temperature_pair_is_one_sweep_and_exact_for_an_rbm_without_weights(numpy_backend):
    """With W = 0 the RBM is the product of its visible biases' Bernoullis: a base model with those biases makes
    every weight exactly P(x), whatever the chain does."""
    model = BernoulliRBM(5, 3, dtype="float64")
    b = np.array([0.3, -1.0, 2.0, 0.0, -0.5])
    model.set_params({"W": np.zeros((5, 3)), "b": b, "c": np.array([0.2, -0.4, 1.0])})
    X = _all_binary(5)
    data = np.tile(expit(b), (1, 1))                 # pixel means = sigmoid(b): b_A = b
    est = raise_log_likelihood(model, X, n_chains=3, betas=[0.0, 0.5, 1.0], data=data, seed=0)
    np.testing.assert_allclose(est.log_p, model.log_likelihood(X), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["numpy", "strict"])
def test_raise_approaches_exact_from_below_and_brackets_with_ais(name):
    """A 784-12 RBM trained briefly: RAISE's mean log P on 100 test images is below the exact one with few
    temperatures and within 3 paired standard errors of it with many; the log Z it implies is above AIS's."""
    with refvae.use_backend(name) as B:
        train, test = refvae.datasets.load("mnist-10k", binarize="stochastic-once")
        model = BernoulliRBM(784, 12, persistent=False, k=1, seed=0)
        model.init_visible_bias(B.asarray(train))
        refvae.fit(model, B.asarray(train[:3000]), epochs=2, batch_size=100,
                   optimizer=refvae.SGD(0.05, momentum=0.9), progress=False, verbose=False)
        V = B.asarray(test[:100])
        exact = B.to_numpy(model.log_likelihood(V)).astype(np.float64)
        exact_log_z = model.log_partition("exact")
        coarse = raise_log_likelihood(model, V, betas=20, data=B.asarray(train), seed=0)
        fine = raise_log_likelihood(model, V, betas=1500, data=B.asarray(train), seed=0)
        ais = model.log_partition("ais", n_chains=100, betas=1500, data=B.asarray(train), seed=0, return_bounds=True)
    def paired(est):            # the mean difference from exact on the same images, and its standard error
        return (est.log_p - exact).mean(), np.std(est.log_p - exact, ddof=1) / math.sqrt(exact.size)

    gap_coarse, se_coarse = paired(coarse)
    gap_fine, se_fine = paired(fine)
    assert gap_coarse < -3 * se_coarse, (gap_coarse, se_coarse)               # conservative: clearly below
    assert abs(gap_fine) < 3 * se_fine + 0.02, (gap_fine, se_fine)
    assert abs(gap_fine) < abs(gap_coarse)
    assert fine.log_z + 3 * fine.log_z_se >= exact_log_z >= ais.log_z - 3 * (ais.upper - ais.log_z)
    assert fine.log_z - 3 * fine.log_z_se <= exact_log_z + 0.05


def test_bad_inputs_are_refused(numpy_backend):
    model = _tiny_rbm()
    X = _all_binary(4)
    with pytest.raises(ValueError, match="n_chains"):
        raise_log_likelihood(model, X, n_chains=0)
    with pytest.raises(ValueError, match="betas must increase"):
        raise_log_likelihood(model, X, betas=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ValueError):
        raise_log_likelihood(model, np.zeros((2, 5)))


# ------------------------------------------------------------------------------------------------------
# The validation benchmarks, in their --quick modes
# ------------------------------------------------------------------------------------------------------
def _benchmark(name):
    import importlib
    import sys
    from pathlib import Path
    bench = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, bench)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(bench)


def test_ais_validation_quick_counts_the_bars_that_hold(tmp_path):
    import refvae
    with refvae.use_backend("numpy"):
        r = _benchmark("ais_validation").main(["--quick", "--raise-chains", "2", "--json", str(tmp_path / "v.json")])
    assert r["seeds"] == 3 and len(r["runs"]) == 3 and r["raise_chains"] == 2
    assert r["ais_band_holds"] == sum(run["ais_band_holds"] for run in r["runs"])
    assert all(run["raise_error"] == pytest.approx(run["raise_log_z"] - r["exact_log_z"]) for run in r["runs"])


def test_raise_chains_quick_groups_the_chains(tmp_path):
    import refvae
    with refvae.use_backend("numpy"):
        r = _benchmark("raise_chains").main(["--quick", "--json", str(tmp_path / "c.json")])
    assert list(r["by_chains"]) == ["1", "2"] and r["by_chains"]["1"]["groups"] == 4
    assert r["by_chains"]["2"]["groups"] == 2


def test_bias_by_chains_against_a_hand_computation():
    import math
    bias_by_chains = _benchmark("raise_chains").bias_by_chains
    log_w = np.log(np.array([[1.0, 3.0, 2.0, 2.0]]))                   # one image, four chains
    exact = np.log(np.array([2.0]))
    r = bias_by_chains(log_w, exact)
    # S = 1: errors log(1/2), log(3/2), 0, 0; S = 2: log(2/2) = 0, log(2/2) = 0
    assert r["1"]["mean_error"] == pytest.approx((math.log(0.5) + math.log(1.5)) / 4)
    assert r["2"]["mean_error"] == pytest.approx(0.0, abs=1e-15)
