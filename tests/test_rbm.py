"""The Bernoulli RBM: free energy and partition function against brute force over all (v, h), normalisation,
the CD gradient with an exact negative phase against the exact likelihood gradient, AIS against exact log Z,
training direction, the adaptive prior, checkpoints with persistent chains, and bad input."""

import itertools
import math

import numpy as np
import pytest
from scipy.special import logsumexp

import refvae
from rbm import BernoulliRBM, ais_betas
from rbm.partition import exact_nll_grads, model_expectations


def _all_binary(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _random_rbm(backend, nv, nh, seed=0, scale=1.0):
    model = BernoulliRBM(nv, nh, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    model.set_params({"W": scale * rng.normal(size=(nv, nh)), "b": 0.5 * rng.normal(size=nv),
                      "c": 0.5 * rng.normal(size=nh)})
    return model


def _brute_force(model, backend):
    """Energies of every (v, h): returns (V, log Z, free energies), on the host in float64."""
    W, b, c = (backend.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    V, H = _all_binary(model.n_visible), _all_binary(model.n_hidden)
    neg_energy = (V @ b)[:, None] + (H @ c)[None, :] + V @ W @ H.T          # -E(v, h), (2^nv, 2^nh)
    return V, logsumexp(neg_energy), -logsumexp(neg_energy, axis=1)


@pytest.mark.parametrize("shape", [(5, 3), (3, 6)], ids=["enumerate-hidden", "enumerate-visible"])
def test_free_energy_and_log_partition_match_brute_force(backend, shape):
    model = _random_rbm(backend, *shape, seed=1)
    V, log_z, free = _brute_force(model, backend)
    np.testing.assert_allclose(backend.to_numpy(model.free_energy(backend.asarray(V))), free, rtol=0, atol=1e-10)
    assert model.log_partition("exact") == pytest.approx(log_z, abs=1e-10)
    probs = np.exp(backend.to_numpy(model.log_likelihood(V)))
    assert probs.sum() == pytest.approx(1.0, abs=1e-10)


def test_chunked_enumeration_agrees(numpy_backend):
    model = _random_rbm(numpy_backend, 4, 9, seed=2)
    assert model.log_partition("exact", batch=8) == pytest.approx(model.log_partition("exact"), abs=1e-10)


def test_model_expectations_match_brute_force(backend):
    model = _random_rbm(backend, 4, 3, seed=3)
    W, b, c = (backend.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    V, H = _all_binary(4), _all_binary(3)
    neg_energy = (V @ b)[:, None] + (H @ c)[None, :] + V @ W @ H.T
    P = np.exp(neg_energy - logsumexp(neg_energy))                            # P(v, h)
    e = model_expectations(model)
    np.testing.assert_allclose(backend.to_numpy(e["v"]), P.sum(1) @ V, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(e["h"]), P.sum(0) @ H, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(e["vh"]), V.T @ P @ H, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(model.hidden_marginal("exact")), P.sum(0) @ H, atol=1e-12)


def test_gradients_pass_the_finite_difference_check(backend):
    model = _random_rbm(backend, 5, 4, seed=4)
    V = backend.asarray((np.random.default_rng(0).random((6, 5)) < 0.5).astype(np.float64))
    r = refvae.gradcheck(lambda p: float(backend.xp.mean(model.free_energy(V))), model.params, model.free_energy_grads(V))
    assert r.max_error <= 1e-6, str(r)
    r = refvae.gradcheck(lambda p: -float(backend.xp.mean(model.log_likelihood(V))), model.params,
                         exact_nll_grads(model, V))
    assert r.max_error <= 1e-6, str(r)


def test_cd_gradient_with_exact_negative_phase_is_the_exact_gradient(numpy_backend):
    """loss_and_grads' positive phase minus the exact model statistics equals the exact NLL gradient."""
    model = _random_rbm(numpy_backend, 5, 4, seed=5)
    V = (np.random.default_rng(1).random((7, 5)) < 0.5).astype(np.float64)
    e = model_expectations(model)
    n = V.shape[0]
    p_pos = model.hidden_probs(V)
    cd_exact = {"W": -(V.T @ p_pos / n - e["vh"]), "b": -(V.mean(0) - e["v"]), "c": -(p_pos.mean(0) - e["h"])}
    exact = exact_nll_grads(model, V)
    for k in cd_exact:
        np.testing.assert_allclose(cd_exact[k], exact[k], atol=1e-12)


def _prototypes(n=64, seed=0):
    """Two complementary binary prototypes with 5% flip noise: pixel means ~0.5, all structure in correlations."""
    rng = np.random.default_rng(seed)
    proto = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1, 1, 1, 0]], dtype=np.float64)
    X = proto[rng.integers(0, 2, n)]
    return np.abs(X - (rng.random(X.shape) < 0.05)).astype(np.float32)


def test_training_increases_the_exact_likelihood(backend):
    """The sign convention end to end: SGD on the CD / PCD grads raises the exact log-likelihood of the data.
    The pixel means are ~0.5, so only the weights (a correctly signed W update) can raise it much.

    The step is small enough for PCD's chains to follow the model between the two modes: with SGD(0.1,
    momentum=0.5) for 100 epochs, PCD's gain depended on the random stream (from -0.98 to 4.26 nats over 10
    NumPy seeds, 1.58 on CuPy); with SGD(0.05) for 200 epochs it was 2.49 to 4.26 over 20 seeds (CD-1: 4.08
    to 4.11)."""
    X = _prototypes()
    for persistent in (False, True):
        model = BernoulliRBM(9, 4, seed=0, persistent=persistent, k=1)
        before = float(backend.xp.mean(model.log_likelihood(X)))
        refvae.fit(model, X, epochs=200, batch_size=16, optimizer=refvae.SGD(0.05), progress=False)
        after = float(backend.xp.mean(model.log_likelihood(X)))
        assert after > before + 2.0, (persistent, before, after)


def test_adaptive_prior_and_sparsity(numpy_backend):
    X = refvae.datasets.load("bars", side=3)[0]
    fixed = BernoulliRBM(9, 6, seed=0, adaptive_prior=False)
    refvae.fit(fixed, X, epochs=20, batch_size=7, optimizer=refvae.SGD(0.1), progress=False)
    assert np.all(fixed.params["c"] == 0.0)
    sparse = BernoulliRBM(9, 6, seed=0, sparsity_target=0.05, sparsity_cost=1.0)
    free = BernoulliRBM(9, 6, seed=0)
    for m in (sparse, free):
        refvae.fit(m, X, epochs=60, batch_size=7, optimizer=refvae.SGD(0.1), progress=False)
    assert float(sparse.aggregate_posterior(X).mean()) < float(free.aggregate_posterior(X).mean())
    history = refvae.fit(BernoulliRBM(9, 6, seed=0), X, epochs=2, batch_size=7, optimizer=refvae.SGD(0.1),
                         progress=False)
    assert len(history["prior_gap_max"]) == 2 and len(history["aggregate_posterior_mean"]) == 2


def test_ais_agrees_with_exact_and_tightens(numpy_backend):
    """A 20-hidden RBM trained briefly on mnist-10k: AIS within its bounds and 0.1 nats of exact log Z."""
    train, _ = refvae.datasets.load("mnist-10k")
    X = train[:2000]
    model = BernoulliRBM(784, 20, seed=0)
    model.init_visible_bias(X)
    refvae.fit(model, X, epochs=3, batch_size=100, optimizer=refvae.SGD(0.05, momentum=0.5), binarize="static",
               progress=False)
    exact = model.log_partition("exact")
    widths = []
    for n_betas in (30, 3000):
        est, lo, hi = model.log_partition("ais", n_chains=100, betas=n_betas, data=X, seed=1, return_bounds=True)
        widths.append(hi - lo)
    assert lo <= exact <= hi, (lo, exact, hi)
    assert abs(est - exact) < 0.1
    assert widths[-1] < widths[0], widths          # the bounds tighten as the number of temperatures grows


def test_ais_schedule():
    betas = ais_betas(14500)
    assert len(betas) == 14500 and betas[0] == 0.0 and betas[-1] == 1.0
    assert all(b2 > b1 for b1, b2 in zip(betas, betas[1:]))


def test_pcd_chains_survive_a_partial_batch(numpy_backend):
    """14 examples at batch 4: the last batch has 2, and the 4 persistent chains carry on through it."""
    X = refvae.datasets.load("bars", side=3)[0]
    model = BernoulliRBM(9, 4, seed=0)
    model.loss_and_grads(X[:4])
    before = model.chains
    _, grads = model.loss_and_grads(X[:2])
    assert model.chains.shape == (4, 9) and model.chains is not before
    assert grads["W"].shape == (9, 4)
    refvae.fit(model, X, epochs=2, batch_size=4, optimizer=refvae.SGD(0.1), progress=False)
    assert model.chains.shape == (4, 9)


def test_checkpoint_keeps_parameters_and_chains(numpy_backend, tmp_path):
    X = refvae.datasets.load("bars", side=3)[0]
    model = BernoulliRBM(9, 4, seed=0)
    refvae.fit(model, X, epochs=2, batch_size=7, optimizer=refvae.SGD(0.1), progress=False)
    again = refvae.load(model.save(tmp_path / "rbm.npz"))
    assert isinstance(again, BernoulliRBM) and again.config == model.config
    np.testing.assert_array_equal(again.params["W"], model.params["W"])
    np.testing.assert_array_equal(again.chains, model.chains)


def test_resume_with_persistent_chains_is_exact(numpy_backend, tmp_path):
    X = refvae.datasets.load("bars", side=3)[0]
    kw = dict(batch_size=7, seed=1, progress=False)
    full = BernoulliRBM(9, 4, seed=0)
    h_full = refvae.fit(full, X, epochs=4, optimizer=refvae.SGD(0.1, momentum=0.5), **kw)
    part = BernoulliRBM(9, 4, seed=0)
    refvae.fit(part, X, epochs=2, optimizer=refvae.SGD(0.1, momentum=0.5), checkpoint=tmp_path / "c.npz", **kw)
    resumed = BernoulliRBM(9, 4, seed=0)
    h = refvae.fit(resumed, X, epochs=4, optimizer=refvae.SGD(0.1, momentum=0.5), checkpoint=tmp_path / "c.npz",
                   resume=True, **kw)
    assert h["train_loss"] == h_full["train_loss"]
    np.testing.assert_array_equal(resumed.params["W"], full.params["W"])


def test_bad_input(numpy_backend):
    model = BernoulliRBM(9, 4)
    with pytest.raises(refvae.DataError, match=r"\[0, 1\]"):
        model.loss_and_grads(np.full((2, 9), 2.0))
    with pytest.raises(refvae.DataError, match="8 columns but the model expects 9"):
        model.loss_and_grads(np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"2\^30 states.*method='ais'"):
        BernoulliRBM(40, 30).log_partition("exact")
    broken = BernoulliRBM(9, 4)
    broken.params["W"] = broken.params["W"] * np.nan
    with pytest.raises(ValueError, match="non-finite parameters in W"):
        broken.log_partition("exact")
    with pytest.raises(ValueError, match="sparsity_target"):
        BernoulliRBM(9, 4, sparsity_target=1.5)
