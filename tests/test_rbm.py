"""The Bernoulli RBM: free energy and partition function against brute force over all (v, h), normalisation,
the CD gradient with an exact negative phase against the exact likelihood gradient, the PCD gradient and the
sparsity average against their documented formulas, AIS against exact log Z and against a direct implementation,
its temperature schedule, training direction, the adaptive prior, checkpoints with persistent chains, and bad input."""

import itertools
import math

import numpy as np
import pytest
from scipy.special import expit, logsumexp

from conftest import recording_rng

import refvae
from rbm import BernoulliRBM, ais_betas
from rbm.partition import exact_nll_grads, model_expectations


def _all_binary(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _random_rbm(backend, nv, nh, seed=0, scale=1.0, **kw):
    model = BernoulliRBM(nv, nh, seed=seed, dtype="float64", **kw)
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


def _negative_statistics(model, backend):
    """The negative phase from the persistent chains on the host, as documented: <v h^T>, <v>, <h> over the
    chains v_neg with P(h = 1 | v_neg) (probabilities, not samples), each averaged over the number of chains."""
    W, c = backend.to_numpy(model.params["W"]), backend.to_numpy(model.params["c"])
    v_neg = backend.to_numpy(model.chains)
    p_neg = expit(v_neg @ W + c)
    return {"W": v_neg.T @ p_neg / v_neg.shape[0], "b": v_neg.mean(0), "c": p_neg.mean(0)}


def test_cd_gradient_with_exact_negative_phase_is_the_exact_gradient(backend):
    """loss_and_grads' gradient with its negative phase (the chains' statistics) replaced by the exact model
    statistics E_model[v h^T], E_model[v], E_model[h] equals the exact NLL gradient: its positive phase is exact.
    The batch (7) differs from the number of chains (4), so each phase must be averaged over its own size."""
    model = _random_rbm(backend, 5, 4, seed=5)
    V = (np.random.default_rng(1).random((7, 5)) < 0.5).astype(np.float64)
    model.init_chains(4)                                         # 4 persistent chains
    model.loss_and_grads(V[:4])
    _, grads = model.loss_and_grads(V)
    neg = _negative_statistics(model, backend)
    e = {k: backend.to_numpy(v) for k, v in model_expectations(model).items() if k != "log_z"}
    exact = exact_nll_grads(model, backend.asarray(V))
    for k, e_key in (("W", "vh"), ("b", "v"), ("c", "h")):
        with_exact_negative_phase = backend.to_numpy(grads[k]) - neg[k] + e[e_key]
        np.testing.assert_allclose(with_exact_negative_phase, backend.to_numpy(exact[k]), rtol=0, atol=1e-12,
                                   err_msg=k)


def test_pcd_gradient_is_the_documented_formula_with_a_partial_batch(backend):
    """grads rebuilt on the host from the data and the chains after the call (v_neg): positive statistics
    averaged over the batch, negative ones over the chains, both with P(h|v) (probabilities, not samples).
    A batch of 3 against 6 chains, as the partial last batch of an epoch."""
    model = _random_rbm(backend, 5, 4, seed=11)
    rng = np.random.default_rng(2)
    V = (rng.random((6, 5)) < 0.5).astype(np.float64)
    model.init_chains(6)                                         # 6 persistent chains
    model.loss_and_grads(V)
    batch = rng.random((3, 5))                                   # grey values: probabilities are data too
    loss, grads = model.loss_and_grads(batch)
    assert tuple(model.chains.shape) == (6, 5)
    W, b, c = (backend.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    p_pos = expit(batch @ W + c)
    neg = _negative_statistics(model, backend)
    expected = {"W": -(batch.T @ p_pos / 3 - neg["W"]),                   # -( <v h>_data - <v h>_model )
                "b": -(batch.mean(0) - neg["b"]), "c": -(p_pos.mean(0) - neg["c"])}
    for k in expected:
        np.testing.assert_allclose(backend.to_numpy(grads[k]), expected[k], rtol=0, atol=1e-12, err_msg=k)
    v_neg = backend.to_numpy(model.chains)
    free = lambda v: -(v @ b) - np.logaddexp(0.0, v @ W + c).sum(1)                      # noqa: E731
    assert loss == pytest.approx(free(batch).mean() - free(v_neg).mean(), abs=1e-12)


def test_sparsity_running_average_and_its_pull(backend):
    """q = q_1 after the first batch, then 0.95 q_1 + 0.05 q_2 (q_t = mean over batch t of P(h|v)); the pull
    sparsity_cost * (q - target) is added to grads["c"], and mean(v) times it to grads["W"] (compared with a twin
    model without the penalty, which draws the same chains)."""
    target, cost = 0.1, 0.7
    sparse = _random_rbm(backend, 5, 4, seed=12, sparsity_target=target, sparsity_cost=cost)
    plain = _random_rbm(backend, 5, 4, seed=12)
    sparse.init_chains(6)
    plain.init_chains(6)
    W, c = backend.to_numpy(sparse.params["W"]), backend.to_numpy(sparse.params["c"])
    rng = np.random.default_rng(3)
    X1, X2 = (rng.random((6, 5)) < 0.5).astype(np.float64), (rng.random((6, 5)) < 0.3).astype(np.float64)
    q1, q2 = expit(X1 @ W + c).mean(0), expit(X2 @ W + c).mean(0)
    sparse.loss_and_grads(X1)
    np.testing.assert_allclose(backend.to_numpy(sparse.sparsity_q), q1, rtol=0, atol=1e-12)
    plain.loss_and_grads(X1)
    _, g_sparse = sparse.loss_and_grads(X2)
    _, g_plain = plain.loss_and_grads(X2)
    q = 0.95 * q1 + 0.05 * q2
    np.testing.assert_allclose(backend.to_numpy(sparse.sparsity_q), q, rtol=0, atol=1e-12)
    pull = cost * (q - target)
    np.testing.assert_allclose(backend.to_numpy(g_sparse["c"]) - backend.to_numpy(g_plain["c"]), pull, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(g_sparse["W"]) - backend.to_numpy(g_plain["W"]),
                               X2.mean(0)[:, None] * pull[None, :], rtol=0, atol=1e-12)


def _prototypes(n=64, seed=0):
    """Two complementary binary prototypes with 5% flip noise: pixel means ~0.5, all structure in correlations."""
    rng = np.random.default_rng(seed)
    proto = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1, 1, 1, 0]], dtype=np.float64)
    X = proto[rng.integers(0, 2, n)]
    return np.abs(X - (rng.random(X.shape) < 0.05)).astype(np.float32)


@pytest.mark.long
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
    # every hidden unit's mean activation over the data ends near the target 0.05: 0.040 to 0.041 over 10 seeds
    # (model and fit), where the unpenalised model's mean is 0.46
    rates = np.asarray(sparse.aggregate_posterior(X))
    assert np.all(np.abs(rates - 0.05) < 0.025), rates
    assert abs(float(np.mean(sparse.sparsity_q)) - 0.05) < 0.025, sparse.sparsity_q
    history = refvae.fit(BernoulliRBM(9, 6, seed=0), X, epochs=2, batch_size=7, optimizer=refvae.SGD(0.1),
                         progress=False)
    assert len(history["prior_gap_max"]) == 2 and len(history["aggregate_posterior_mean"]) == 2


@pytest.mark.long
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


def test_ais_matches_a_direct_implementation_and_draws_nothing_unused(backend):
    """Every Bernoulli draw of AIS is recorded (probabilities and samples), then the run is rebuilt on the host:
    the first draw is exact samples of the base model A, each intermediate beta_k (k = 1..K-2) one Gibbs sweep
    h ~ P_k(h|v), v ~ P_k(v|h), and nothing else (no sweep after the last weight update, at beta = 1: the
    estimate uses only the weights). The estimate is log Z_A + log mean exp(log w) with
    log w = sum_k log p*_k(v_{k-1}) - log p*_{k-1}(v_{k-1})."""
    model = _random_rbm(backend, 4, 3, seed=9)
    W, b, c = (backend.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    data = np.array([[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1]], dtype=np.float64)
    gen, draws = recording_rng(backend, 3)                              # (p, sample) of every bernoulli call, host
    betas, M = [0.0, 0.2, 0.5, 0.8, 1.0], 6
    log_z = model.log_partition("ais", n_chains=M, betas=betas, data=data, rng=gen)

    assert len(draws) == 1 + 2 * (len(betas) - 2), [d[0].shape for d in draws]
    p_mean = np.clip(data.mean(0), 1e-3, 1 - 1e-3)
    b_a = np.log(p_mean) - np.log1p(-p_mean)
    softplus = lambda a: np.logaddexp(0.0, a)                                              # noqa: E731
    log_p_star = lambda v, beta: (1 - beta) * v @ b_a + beta * v @ b + softplus(beta * (v @ W + c)).sum(1)  # noqa: E731
    np.testing.assert_allclose(draws[0][0], np.broadcast_to(expit(b_a), (M, 4)), rtol=0, atol=1e-12)
    v = draws[0][1]
    log_w = np.zeros(M)
    for k in range(1, len(betas)):
        log_w += log_p_star(v, betas[k]) - log_p_star(v, betas[k - 1])
        if k == len(betas) - 1:
            break
        (p_h, h), (p_v, v_next) = draws[2 * k - 1], draws[2 * k]
        np.testing.assert_allclose(p_h, expit(betas[k] * (v @ W + c)), rtol=0, atol=1e-12)
        np.testing.assert_allclose(p_v, expit((1 - betas[k]) * b_a + betas[k] * (h @ W.T + b)), rtol=0, atol=1e-12)
        v = v_next
    log_z_a = softplus(b_a).sum() + 3 * math.log(2.0)
    assert log_z == pytest.approx(log_z_a + logsumexp(log_w) - math.log(M), abs=1e-10)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 10, 29, 30, 100, 14500])
def test_ais_schedule(n):
    """Every count n >= 2 gives n strictly increasing temperatures from exactly 0 to exactly 1."""
    betas = ais_betas(n)
    assert len(betas) == n and betas[0] == 0.0 and betas[-1] == 1.0, betas[:5] + betas[-5:]
    assert all(b2 > b1 for b1, b2 in zip(betas, betas[1:]))


def test_ais_schedule_small_counts_and_the_default():
    assert ais_betas(2) == [0.0, 1.0] and ais_betas(3) == [0.0, 0.5, 1.0]
    betas = ais_betas()             # Salakhutdinov & Murray: 500 on [0, 0.5), 4000 on [0.5, 0.9), 10000 on [0.9, 1]
    assert len(betas) == 14500
    np.testing.assert_allclose(betas[:500], np.arange(500) / 500 * 0.5, rtol=0, atol=1e-15)
    np.testing.assert_allclose(betas[500:4500], 0.5 + 0.4 * np.arange(4000) / 4000, rtol=0, atol=1e-15)
    np.testing.assert_allclose(betas[4500:], 0.9 + 0.1 * np.arange(10000) / 9999, rtol=0, atol=1e-15)
    for bad in (0, 1, -3):
        with pytest.raises(ValueError, match="at least 2 temperatures"):
            ais_betas(bad)


@pytest.mark.parametrize("n_betas", [2, 3])
def test_ais_with_very_few_temperatures_runs(numpy_backend, n_betas):
    """betas=2 is plain importance sampling from the base model: log Z_A + log mean_v exp(log p*_B(v) - log p*_A(v))."""
    model = _random_rbm(numpy_backend, 5, 3, seed=8)
    est, lo, hi = model.log_partition("ais", betas=n_betas, n_chains=20000, seed=0, return_bounds=True)
    assert math.isfinite(est) and lo <= est <= hi
    assert abs(est - model.log_partition("exact")) < 0.1


def test_pcd_chains_survive_a_partial_batch(numpy_backend):
    """14 examples at batch 4: the last batch has 2, and the 4 persistent chains carry on through it."""
    X = refvae.datasets.load("bars", side=3)[0]
    model = BernoulliRBM(9, 4, seed=0)
    model.init_chains(4)
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


def test_loss_is_the_free_energy_gap_and_leaves_the_chains(backend, host_rng):
    """``loss`` (fit's validation loss) is the quantity ``loss_and_grads`` returns, and does not move the PCD chains;
    the reconstruction error is a separate monitor."""
    X = _prototypes()
    model = BernoulliRBM(9, 4, seed=0, persistent=True, k=1)
    refvae.fit(model, X, epochs=2, batch_size=16, optimizer=refvae.SGD(0.05), progress=False)
    chains = backend.to_numpy(model.chains, copy=True)
    V = backend.asarray(X[:10])
    gap = float(backend.xp.mean(model.free_energy(V))) - float(backend.xp.mean(model.free_energy(model.chains)))
    assert model.loss(V) == pytest.approx(gap, rel=1e-5)
    np.testing.assert_array_equal(backend.to_numpy(model.chains), chains)
    recon = model.reconstruction_error(V)
    assert recon > 0 and recon != pytest.approx(model.loss(V))
    history = refvae.fit(BernoulliRBM(9, 4, seed=0, persistent=False, k=1), X, epochs=2, batch_size=16,
                         optimizer=refvae.SGD(0.05), X_val=X, progress=False)
    # CD: training and validation loss are both free-energy gaps on the same data: close, not a different scale
    assert abs(history["val_loss"][-1] - history["train_loss"][-1]) < 1.0
    assert "reconstruction_error" in history


def test_ais_warns_when_its_error_bar_cannot_be_trusted(numpy_backend):
    """A confidently wrong AIS estimate (weights ×100) warns, with a low effective sample size; a good one does not."""
    import warnings

    from rbm import AISWarning

    train, _ = refvae.datasets.load("mnist-10k")
    X = (np.random.default_rng(0).random(train[:2000].shape) < train[:2000]).astype(np.float32)
    model = BernoulliRBM(784, 10, seed=0, persistent=False)
    refvae.fit(model, X, epochs=1, batch_size=100, optimizer=refvae.SGD(0.01, momentum=0.9), progress=False)
    model.params["W"][...] *= 100.0
    with pytest.warns(AISWarning, match="not trustworthy.*effective chains"):
        est = model.log_partition("ais", n_chains=100, betas=1000, data=X, return_bounds=True)
    assert not est.trustworthy and est.ess < 10
    assert abs(est.log_z - model.log_partition("exact")) > 10                  # it is indeed wrong
    log_z, lower, upper = est                                                  # unpacks as before
    assert (log_z, lower, upper) == (est.log_z, est.lower, est.upper)
    bars = refvae.datasets.load("hinton-bars", n_train=2000)[0]                # a small model AIS handles well
    good = BernoulliRBM(16, 6, seed=0, persistent=False)
    refvae.fit(good, bars, epochs=5, batch_size=20, optimizer=refvae.SGD(0.05, momentum=0.5), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AISWarning)
        ok = good.log_partition("ais", n_chains=100, betas=300, data=bars, return_bounds=True)
    exact = good.log_partition("exact")
    assert ok.trustworthy and ok.ess > 50 and ok.lower - 0.2 <= exact <= ok.upper + 0.2


def test_small_models_record_their_exact_log_likelihood(numpy_backend):
    X = _prototypes()
    model = BernoulliRBM(9, 4, seed=0, persistent=False, k=1)
    history = refvae.fit(model, X, epochs=3, batch_size=16, optimizer=refvae.SGD(0.05), progress=False)
    recorded = history["exact_log_likelihood"]
    assert len(recorded) == 3 and recorded[-1] > recorded[0]
    # fit's monitored subset is the whole (64-example) data set here
    assert recorded[-1] == pytest.approx(float(np.mean(model.log_likelihood(X))), rel=1e-6)


# ------------------------------------------------------------------------------------------------------
# negative_phase="exact": the exact likelihood gradient, and the adaptive prior's fixed point
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 4), (3, 6)], ids=["enumerate-hidden", "enumerate-visible"])
def test_exact_negative_phase_against_brute_force_and_finite_differences(backend, shape):
    """With negative_phase="exact", loss_and_grads is the exact mean negative log-likelihood and its gradient:
    the loss against the sum over every (v, h), the gradient against the brute-force model statistics
    <v h^T>, <v>, <h> under P(v, h), and against central differences of the exact loss (float64)."""
    model = _random_rbm(backend, *shape, seed=7, negative_phase="exact")
    nv, nh = shape
    V = (np.random.default_rng(3).random((9, nv)) < 0.5).astype(np.float64)
    loss, grads = model.loss_and_grads(V)
    Vall, log_z, free = _brute_force(model, backend)
    W, b, c = (backend.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    H = _all_binary(nh)
    neg_energy = (Vall @ b)[:, None] + (H @ c)[None, :] + Vall @ W @ H.T
    P = np.exp(neg_energy - log_z)                                          # P(v, h), (2^nv, 2^nh)
    free_data = -(V @ b) - np.logaddexp(0, V @ W + c).sum(axis=1)
    assert loss == pytest.approx(float(np.mean(free_data)) + log_z, abs=1e-10)
    assert loss == pytest.approx(model.loss(V), abs=1e-12)
    p_data = expit(V @ W + c)
    expected = {"W": -(V.T @ p_data / len(V) - Vall.T @ P @ H), "b": -(V.mean(0) - P.sum(1) @ Vall),
                "c": -(p_data.mean(0) - P.sum(0) @ H)}
    for k in ("W", "b", "c"):
        np.testing.assert_allclose(backend.to_numpy(grads[k]), expected[k], rtol=0, atol=1e-12, err_msg=k)
    Vd = backend.asarray(V)
    r = refvae.gradcheck(lambda p: model.loss(Vd), model.params, grads)
    assert r.max_error <= 1e-6, str(r)
    assert model.chains is None                                             # no Gibbs chain was made


def test_exact_negative_phase_keeps_fixed_hidden_biases_and_checks_its_size(numpy_backend):
    model = _random_rbm(numpy_backend, 5, 3, seed=1, negative_phase="exact", adaptive_prior=False)
    _, grads = model.loss_and_grads((np.random.default_rng(0).random((4, 5)) < 0.5).astype(float))
    assert not np.any(grads["c"]) and np.any(grads["W"])
    BernoulliRBM(784, 20, negative_phase="exact")                           # 20 units: allowed
    with pytest.raises(ValueError, match=r"21 units: at most 20.*negative_phase='gibbs'"):
        BernoulliRBM(784, 21, negative_phase="exact")
    with pytest.raises(ValueError, match="negative_phase must be one of"):
        BernoulliRBM(5, 3, negative_phase="mean-field")
    assert "exact" in repr(model)


def test_exact_negative_phase_round_trips(numpy_backend, tmp_path):
    model = _random_rbm(numpy_backend, 5, 3, seed=1, negative_phase="exact")
    back = refvae.load(model.save(tmp_path / "rbm.npz"))
    assert back.negative_phase == "exact" and back.loss(np.eye(5)) == pytest.approx(model.loss(np.eye(5)), abs=1e-12)


def test_exact_training_reaches_the_adaptive_priors_fixed_point(numpy_backend):
    """Full-batch training with the exact gradient converges to a maximum of the likelihood, where the hidden
    biases' gradient vanishes: the aggregate posterior <P(h|v)>_data equals the model's marginal E_model[h] to
    below 0.005 per unit, and every gradient is near zero."""
    rng = np.random.default_rng(0)
    prototypes = (rng.random((3, 8)) < 0.5).astype(float)
    V = np.abs(prototypes[rng.integers(0, 3, 300)] - (rng.random((300, 8)) < 0.1))      # 3 noisy patterns
    model = BernoulliRBM(8, 3, seed=0, dtype="float64", negative_phase="exact")
    model.init_visible_bias(V)
    opt = refvae.Adam(0.05)
    for step in range(2000):
        opt.lr = 0.05 if step < 1000 else 0.005
        loss, grads = model.loss_and_grads(V)
        opt.step(model.params, grads)
    loss, grads = model.loss_and_grads(V)
    gap = np.max(np.abs(model.aggregate_posterior(V) - model.hidden_marginal("exact")))
    assert gap < 0.005
    assert max(float(np.max(np.abs(g))) for g in grads.values()) < 1e-3
    assert loss == pytest.approx(-float(np.mean(model.log_likelihood(V))), abs=1e-10)


# ------------------------------------------------------------------------------------------------------
# rbm.gradients: the phases as pure functions, the chains as explicit state, randomness passed in
# ------------------------------------------------------------------------------------------------------
def test_pcd_update_is_one_sweep_from_the_chains_hidden_states(backend):
    """One PCD-1 update draws exactly twice: v ~ P(v | chain_hidden) = sigmoid(b + h W^T), which becomes the chains'
    visible state, then h ~ P(h | v) = sigmoid(c + v W), the chains' next hidden state; the negative statistics use
    that v and P(h | v). Nothing is drawn on the chains' old visible states."""
    model = _random_rbm(backend, 5, 4, seed=13)
    model.init_chains(3, backend.rng(1))
    W, b, c = (backend.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    h_old = backend.to_numpy(model.chain_hidden, copy=True)
    rng, draws = recording_rng(backend, 2)
    V = (np.random.default_rng(4).random((2, 5)) < 0.5).astype(np.float64)
    _, grads = model.loss_and_grads(V, rng=rng)
    assert len(draws) == 2
    (p_v, v_new), (p_h, h_new) = draws
    np.testing.assert_allclose(p_v, expit(h_old @ W.T + b), rtol=0, atol=1e-12)
    np.testing.assert_allclose(p_h, expit(v_new @ W + c), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(model.chains), v_new)
    np.testing.assert_array_equal(backend.to_numpy(model.chain_hidden), h_new)
    p_pos = expit(V @ W + c)
    np.testing.assert_allclose(backend.to_numpy(grads["W"]), v_new.T @ p_h / 3 - V.T @ p_pos / 2, rtol=0, atol=1e-12)


def test_cd_starts_from_the_positive_phase_and_draws_from_the_rng_given(backend):
    """CD-2: h_0 ~ P(h | v_data) (the positive phase's probabilities), then v, h, v: four draws, all from the
    generator passed in (the model's own generator is not touched), and no chains are kept."""
    model = _random_rbm(backend, 5, 4, seed=14, persistent=False, k=2)

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError("the model's own generator was used")

    model.rng = Untouchable()
    W, b, c = (backend.to_numpy(model.params[k]) for k in ("W", "b", "c"))
    V = np.random.default_rng(5).random((3, 5))                              # grey data: probabilities
    rng, draws = recording_rng(backend, 3)
    model.loss_and_grads(V, rng=rng)
    assert [d[0].shape for d in draws] == [(3, 4), (3, 5), (3, 4), (3, 5)]
    np.testing.assert_allclose(draws[0][0], expit(V @ W + c), rtol=0, atol=1e-12)
    np.testing.assert_allclose(draws[1][0], expit(draws[0][1] @ W.T + b), rtol=0, atol=1e-12)
    assert model.chains is None and model.chain_hidden is None
    assert model.loss(V, rng=backend.rng(3)) == model.loss(V, rng=backend.rng(3))


def test_pcd_chains_are_created_explicitly(numpy_backend):
    """No chains until init_chains / init_training_state; loss_and_grads without them says which call to make;
    init_training_state makes batch_size chains (or the configured n_chains) and keeps chains that exist."""
    X = _prototypes(16)
    model = BernoulliRBM(9, 4, seed=0)
    assert model.chains is None and model.chain_hidden is None
    with pytest.raises(RuntimeError, match=r"init_chains.*init_training_state"):
        model.loss_and_grads(X)
    assert model.chains is None
    model.init_training_state(7, numpy_backend.rng(0))
    assert model.chains.shape == (7, 9) and model.chain_hidden.shape == (7, 4)
    chains = model.chains
    model.init_training_state(5, numpy_backend.rng(1))                       # a second fit continues them
    assert model.chains is chains
    configured = BernoulliRBM(9, 4, seed=0, n_chains=3)
    configured.init_training_state(7, numpy_backend.rng(0))
    assert configured.chains.shape == (3, 9) and configured.config["n_chains"] == 3
    for no_chains in (BernoulliRBM(9, 4, persistent=False), BernoulliRBM(9, 4, negative_phase="exact")):
        no_chains.init_training_state(7, numpy_backend.rng(0))
        assert no_chains.chains is None
    with pytest.raises(ValueError, match="n_chains"):
        BernoulliRBM(9, 4, n_chains=0)


def test_fast_sigmoid_of_the_phases_equals_the_textbook_one(backend, monkeypatch):
    """rbm.gradients' logistic function (numerics.sigmoid_tanh) against numerics.sigmoid: the same loss and
    gradients (float64, to 1e-12) from the same random stream, for PCD, CD-3 and the sparsity penalty."""
    from rbm import gradients

    from refvae import numerics

    assert gradients.FAST_SIGMOID and gradients.sigmoid is numerics.sigmoid_tanh
    V = (np.random.default_rng(6).random((8, 6)) < 0.5).astype(np.float64)
    for kw in ({}, {"persistent": False, "k": 3}, {"sparsity_target": 0.1}):
        results = []
        for logistic in (numerics.sigmoid_tanh, numerics.sigmoid):
            monkeypatch.setattr(gradients, "sigmoid", logistic)
            model = _random_rbm(backend, 6, 4, seed=15, scale=3.0, **kw)
            model.init_training_state(5, backend.rng(0))
            results.append([model.loss_and_grads(V, rng=backend.rng(7)) for _ in range(3)])
        for (loss_fast, g_fast), (loss, g) in zip(*results):
            assert loss_fast == pytest.approx(loss, abs=1e-12)
            for k in g:
                np.testing.assert_allclose(backend.to_numpy(g_fast[k]), backend.to_numpy(g[k]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_tanh_equals_sigmoid(backend, dtype):
    """numerics.sigmoid_tanh is numerics.sigmoid to absolute precision (float64 1e-12, float32 1e-6), stays in
    [0, 1] and finite at logits of +-1e4."""
    from refvae.numerics import sigmoid, sigmoid_tanh

    x = backend.asarray(np.concatenate([np.linspace(-40, 40, 2001), [-1e4, 1e4, 0.0]]), dtype=dtype)
    fast, slow = backend.to_numpy(sigmoid_tanh(x)), backend.to_numpy(sigmoid(x))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12 if dtype == "float64" else 1e-6)
    assert np.all((fast >= 0) & (fast <= 1)) and fast[-3:].tolist() == [0.0, 1.0, 0.5]


def test_chain_hidden_states_are_checkpointed(numpy_backend, tmp_path):
    """Both halves of the chains' state round-trip; a checkpoint with the visible chains only (as written before
    the chains kept their hidden states) loads, with hidden states drawn from P(h | chains)."""
    X = refvae.datasets.load("bars", side=3)[0]
    model = BernoulliRBM(9, 4, seed=0)
    model.init_chains(5, numpy_backend.rng(0))
    model.loss_and_grads(X[:5])
    again = BernoulliRBM.load(model.save(tmp_path / "rbm.npz"))
    np.testing.assert_array_equal(again.chain_hidden, model.chain_hidden)
    np.testing.assert_array_equal(again.chains, model.chains)
    old = BernoulliRBM(9, 4, seed=0)
    old.set_state({"chains": model.chains})
    assert old.chain_hidden.shape == (5, 4) and set(np.unique(old.chain_hidden)) <= {0.0, 1.0}


def test_ais_weights_and_estimate_are_separate_steps(numpy_backend):
    """ais_log_partition = ais_log_weights, then ais_estimate: equal weights give log Z_A + log w with a band of
    zero width and M effective chains; an rng passed in is used as the seed's generator would be."""
    from rbm.partition import ais_estimate, ais_log_partition

    est = ais_estimate(np.full(4, 2.5), 10.0, 7)
    assert est.log_z == pytest.approx(12.5, abs=1e-12) and est.lower == est.upper == pytest.approx(12.5, abs=1e-12)
    assert est.ess == pytest.approx(4.0) and est.temperatures == 7 and est.n_chains == 4
    model = _random_rbm(numpy_backend, 5, 3, seed=8)
    by_seed = ais_log_partition(model, n_chains=50, betas=20, seed=4)
    assert ais_log_partition(model, n_chains=50, betas=20, rng=numpy_backend.rng(4)) == by_seed


def test_samplers_take_an_rng(numpy_backend):
    """sample, hidden_marginal and gibbs draw from the generator passed in: the same generator state, the same
    result; the persistent chains are left as they were."""
    model = _random_rbm(numpy_backend, 6, 4, seed=16)
    model.init_chains(4, numpy_backend.rng(0))
    chains = model.chains.copy()
    np.testing.assert_array_equal(model.sample(3, steps=5, rng=numpy_backend.rng(9)),
                                  model.sample(3, steps=5, rng=numpy_backend.rng(9)))
    np.testing.assert_array_equal(model.sample(3, steps=5, rng=numpy_backend.rng(9)), model.sample(3, steps=5, seed=9))
    np.testing.assert_array_equal(model.chains, chains)
    np.testing.assert_array_equal(model.hidden_marginal("gibbs", n_chains=20, steps=3, rng=numpy_backend.rng(2)),
                                  model.hidden_marginal("gibbs", n_chains=20, steps=3, seed=2))
    v, p = model.gibbs(chains, 2, numpy_backend.rng(3))
    v2, p2 = model.gibbs(chains, 2, numpy_backend.rng(3))
    np.testing.assert_array_equal(v, v2)
    np.testing.assert_array_equal(p, p2)


def test_ais_estimate_band_and_trust_equal_a_direct_recomputation(numpy_backend):
    """The band log(mean w -+ 3 sd(w)/sqrt(M)) + log Z_A, the ESS and the trust rule, recomputed here from the same
    log-weights (independent of any seed: a band 10x too narrow, or an ESS compared with 0.1 instead of 0.1 M, fails)."""
    from rbm import ais_estimate
    from rbm.partition import ESS_FRACTION

    log_w = np.array([0.3, -0.2, 0.1, 0.4, -0.1, 0.2, 0.0, 0.5])
    est = ais_estimate(log_w, 5.0, 100)
    w = np.exp(log_w)
    half = 3.0 * np.std(w, ddof=1) / math.sqrt(w.size)
    assert est.log_z == pytest.approx(5.0 + math.log(w.mean()), abs=1e-12)
    assert est.lower == pytest.approx(5.0 + math.log(w.mean() - half), abs=1e-12)
    assert est.upper == pytest.approx(5.0 + math.log(w.mean() + half), abs=1e-12)
    assert est.ess == pytest.approx(w.sum() ** 2 / (w * w).sum(), rel=1e-12)
    assert est.trustworthy == (est.ess >= ESS_FRACTION * w.size)
    assert est.trustworthy                                          # 8 similar weights: a finite band, ESS near 8
    # the rule itself, with a finite band: ESS of at least ESS_FRACTION * M chains, not ESS_FRACTION
    from rbm import AISEstimate

    assert AISEstimate(0.0, -1.0, 1.0, ESS_FRACTION * 100, 100, 10).trustworthy
    assert not AISEstimate(0.0, -1.0, 1.0, ESS_FRACTION * 100 - 0.5, 100, 10).trustworthy
    assert not AISEstimate(0.0, -math.inf, 1.0, 100.0, 100, 10).trustworthy             # no lower bound


def test_ais_with_one_chain_is_never_trustworthy(numpy_backend):
    """One chain has no spread to estimate: no band, not trustworthy, and a warning."""
    from rbm import AISWarning, ais_estimate

    one = ais_estimate(np.array([0.7]), 1.0, 10)
    assert not one.trustworthy and one.lower == -math.inf and one.upper == math.inf
    assert "no band" in one.describe() and "NOT TRUSTWORTHY" in one.describe()
    model = BernoulliRBM(6, 3, seed=0, persistent=False)
    with pytest.warns(AISWarning, match="one chain has no spread"):
        est = model.log_partition("ais", n_chains=1, betas=20, return_bounds=True)
    assert not est.trustworthy


@pytest.mark.parametrize("betas", [[0.0, 0.5, 0.5, 1.0], [0.0, 0.7, 0.3, 1.0], [0.0, 1.0, 1.0], [0.0, -0.1, 1.0]])
def test_ais_refuses_temperatures_that_do_not_increase(numpy_backend, betas):
    model = BernoulliRBM(6, 3, seed=0, persistent=False)
    with pytest.raises(ValueError, match="increase strictly from 0 to 1"):
        model.log_partition("ais", n_chains=4, betas=betas)


def test_exact_prior_gap_is_the_largest_gap_over_units(numpy_backend):
    """last_terms["prior_gap"] = max_j |<P(h_j = 1 | v)>_batch - E_model[h_j]|, recomputed by enumeration here."""
    model = BernoulliRBM(5, 3, seed=2, dtype="float64", negative_phase="exact")
    init = np.random.default_rng(3)
    model.params["W"] = init.normal(size=(5, 3))
    model.params["c"] = np.array([0.8, -1.5, 0.2])
    V = (init.random((7, 5)) < 0.5).astype(np.float64)
    model.loss_and_grads(V)
    states = np.array(list(itertools.product([0.0, 1.0], repeat=3)))                 # every h
    W, b, c = model.params["W"], model.params["b"], model.params["c"]
    log_p = states @ c + np.logaddexp(0.0, states @ W.T + b).sum(axis=1)              # log p*(h), v summed out
    e_h = np.exp(log_p - logsumexp(log_p)) @ states
    gaps = np.abs(expit(V @ W + c).mean(axis=0) - e_h)
    assert gaps.max() > 1.5 * gaps.mean()                                             # max and mean differ here
    assert model.last_terms["prior_gap"] == pytest.approx(gaps.max(), abs=1e-12)
