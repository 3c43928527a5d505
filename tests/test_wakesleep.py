"""The Helmholtz machine: log P(x, h) and log Q(h|x) against a direct host computation, every hand-written update
against float64 finite differences, the exact likelihood's normalisation, importance sampling converging to it,
the adaptive prior (gradient and moment updates), the RBM prior, training on Hinton's bars, checkpoints, the
command line and bad input."""

import itertools
import json
import math

import numpy as np
import pytest
from scipy.special import expit, log_expit

import refvae
from refvae import datasets
from refvae.evaluation import kl_data_model
from wakesleep import MAX_HIDDEN_ENUMERATION, HelmholtzMachine
from wakesleep import checks as ws_checks
from wakesleep import rules


def _all_binary(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _bern_logp(t, a):
    """sum_j log Bernoulli(t_j | sigmoid(a_j)) on the host, in the form a student would write first."""
    return np.sum(t * log_expit(a) + (1 - t) * log_expit(-a), axis=-1)


def _host(model, backend):
    return {k: backend.to_numpy(v) for k, v in model.params.items()}


def _random_machine(backend, sizes=(4, 3, 2), prior="factorial", seed=0, scale=1.0, **kw):
    model = HelmholtzMachine(sizes, seed=seed, dtype="float64", prior=prior, **kw)
    rng = np.random.default_rng(seed)
    model.set_params({k: scale * rng.normal(size=tuple(v.shape)) for k, v in model.params.items()})
    return model


# ------------------------------------------------------------------------------------------------------
# Log-probabilities and updates
# ------------------------------------------------------------------------------------------------------
def test_log_joint_and_log_q_match_a_direct_computation(backend):
    model = _random_machine(backend, (5, 4, 3), seed=1)
    p = _host(model, backend)
    rng = np.random.default_rng(0)
    x, h1, h2 = (rng.integers(0, 2, size=(6, n)).astype(float) for n in (5, 4, 3))
    log_joint = (_bern_logp(h2, np.broadcast_to(p["prior.b"], h2.shape))
                 + _bern_logp(h1, h2 @ p["gen.2.W"] + p["gen.2.b"]) + _bern_logp(x, h1 @ p["gen.1.W"] + p["gen.1.b"]))
    log_q = _bern_logp(h1, x @ p["rec.1.W"] + p["rec.1.b"]) + _bern_logp(h2, h1 @ p["rec.2.W"] + p["rec.2.b"])
    hs = [backend.asarray(h1), backend.asarray(h2)]
    np.testing.assert_allclose(backend.to_numpy(model.log_joint(x, hs)), log_joint, rtol=0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(model.log_q(hs, x)), log_q, rtol=0, atol=1e-12)


@pytest.mark.parametrize("check", [ws_checks.wake_check, ws_checks.sleep_check, ws_checks.rws_p_check,
                                   ws_checks.rws_q_check, ws_checks.rbm_prior_wake_check, ws_checks.exact_p_check,
                                   ws_checks.exact_q_check],
                         ids=["wake", "sleep", "rws-p", "rws-q", "rbm-prior-wake", "exact-p", "exact-q"])
def test_updates_pass_the_finite_difference_check(backend, check):
    for seed in (0, 1):
        result = check(seed)
        assert result.ok, str(result)
        assert result.max_error <= 1e-6


def test_a_wrong_update_fails_the_check(numpy_backend):
    """The check can fail: the wake update with the prior's sign flipped is caught."""
    model, x, hs, _ = ws_checks.tiny(0)
    grads = model.wake_grads(x, hs)
    grads["prior.b"] = -grads["prior.b"]
    result = refvae.gradcheck(lambda p: -float(np.mean(model.log_joint(x, hs))), model.params, grads, names=["prior.b"])
    assert not result.ok


def test_extreme_logits_give_finite_losses_and_updates(backend):
    model = _random_machine(backend, (4, 3, 2), seed=2, scale=1e4)
    x = _all_binary(4)
    loss, grads = model.loss_and_grads(x)
    assert math.isfinite(loss)
    xp = backend.xp
    assert all(bool(xp.all(xp.isfinite(g))) for g in grads.values())
    assert np.all(np.isfinite(backend.to_numpy(model.log_likelihood(x, method="exact"))))


# ------------------------------------------------------------------------------------------------------
# Likelihoods
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prior, sizes", [("factorial", (4, 3, 2)), ("factorial", (3, 5)), ("rbm", (4, 2, 3))])
def test_exact_likelihood_is_normalised(backend, prior, sizes):
    model = _random_machine(backend, sizes, prior=prior, seed=3)
    X = _all_binary(sizes[0])
    total = np.exp(backend.to_numpy(model.log_likelihood(X, method="exact"))).sum()
    assert total == pytest.approx(1.0, abs=1e-10)


def test_exact_likelihood_matches_brute_force_sum(numpy_backend):
    model = _random_machine(numpy_backend, (3, 2, 2), seed=4)
    x = _all_binary(3)
    H = _all_binary(4)
    per_h = [model.log_joint(x, [np.repeat(h[None, :2], len(x), 0), np.repeat(h[None, 2:], len(x), 0)]) for h in H]
    brute = np.logaddexp.reduce(np.stack(per_h), axis=0)
    np.testing.assert_allclose(model.log_likelihood(x, method="exact", chunk=3), brute, rtol=0, atol=1e-12)


@pytest.mark.long
def test_importance_estimate_converges_to_the_exact_value(backend):
    model = _random_machine(backend, (5, 3, 2), seed=5)
    X = _all_binary(5)[::3]
    exact = backend.to_numpy(model.log_likelihood(X, method="exact"))
    # Mean absolute error over the examples and four seeds: with one seed the error at k = 100000 ranged from
    # 0.010 to 0.033 over 8 NumPy seeds (0.039 on CuPy), too wide for a fixed bound; the four-seed mean narrows it.
    errors = []
    for k in (1, 100, 10000, 100000):
        est = np.stack([backend.to_numpy(model.log_likelihood(X, method="importance", k=k, seed=s, max_rows=2**16))
                        for s in range(4)])
        errors.append(float(np.mean(np.abs(est - exact))))
    # the error falls as k grows, about as 1/sqrt(k) (sqrt(1000) ~ 32 from k = 100 to k = 100000)
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[1] / errors[3] > 5 and errors[3] < 0.03
    # k = 1 is the ELBO: below the exact value on average
    elbo = np.mean([backend.to_numpy(model.log_likelihood(X, method="importance", k=1, seed=s)) for s in range(20)],
                   axis=0)
    assert np.all(elbo < exact)


def test_sample_and_dream_shapes(backend):
    model = _random_machine(backend, (6, 4, 2), seed=6)
    x = backend.to_numpy(model.sample(7, seed=0))
    assert x.shape == (7, 6) and np.all((x >= 0) & (x <= 1))
    xb = backend.to_numpy(model.sample(7, seed=0, mean=False))
    assert set(np.unique(xb)) <= {0.0, 1.0}
    rates = model.firing_rates(_all_binary(6), n_dreams=50)
    assert [tuple(a.shape) for a, _ in rates] == [(4,), (2,)]


# ------------------------------------------------------------------------------------------------------
# The adaptive prior
# ------------------------------------------------------------------------------------------------------
def test_wake_prior_gradient_vanishes_when_the_prior_matches_the_top_samples(numpy_backend):
    model, x, hs, _ = ws_checks.tiny(0)
    mean_top = np.mean(hs[-1], axis=0)
    model.params["prior.b"][...] = np.log(mean_top + 1e-12) - np.log1p(-mean_top + 1e-12)
    np.testing.assert_allclose(model.wake_grads(x, hs)["prior.b"], 0.0, atol=1e-9)


def test_moment_update_moves_the_prior_towards_the_aggregate_recognition(numpy_backend):
    model = HelmholtzMachine((16, 8, 2), seed=0, dtype="float64", prior_update="moment", prior_rate=0.2)
    X, _ = datasets.load("hinton-bars", n_train=400)
    b_before = model.params["prior.b"].copy()
    _, grads, targets = model.loss_grads_and_targets(X, rng=numpy_backend.rng(0))
    np.testing.assert_array_equal(model.params["prior.b"], b_before)     # the step is returned, not taken
    assert set(targets) == {"prior.b"}
    np.testing.assert_allclose(grads["prior.b"], 0.0)
    # p <- 0.8 p + 0.2 target, so the target is recovered exactly and lies in [0, 1]
    target = (expit(targets["prior.b"]) - 0.8 * expit(b_before)) / 0.2
    assert np.all((target >= 0) & (target <= 1))
    # repeated steps on one batch, each target written as the trainer does, converge to the batch's aggregate
    # top-layer recognition probability
    top = rules.TopLayer(None, None, None, model.xp.asarray(target))
    for _ in range(200):
        _, step = rules.prior_step(model.prior_params, top, "moment", 0.2)
        model.params["prior.b"][...] = step["prior.b"]
    np.testing.assert_allclose(expit(model.params["prior.b"]), target, atol=1e-6)


@pytest.mark.parametrize("sizes", [(6, 3), (6, 4, 3)], ids=["one-layer", "two-layer"])
def test_moment_step_matches_an_independent_computation(backend, sizes):
    """One step of prior_update="moment" gives the target sigmoid(b) = (1 - rho) p + rho <Q(h_L = 1 | h_{L-1})>_batch,
    with the target computed on the host from the parameters (and, for two layers, the h_1 that the step itself
    drew: the same generator, after the sleep phase's top states, draws the same h_1); the parameters stay."""
    rho = 0.2
    model = _random_machine(backend, sizes, seed=13, prior_update="moment", prior_rate=rho)
    p = {k: backend.to_numpy(v, copy=True) for k, v in model.params.items()}
    x = _all_binary(6)[::7]                                                  # (10, 6)
    top = len(sizes) - 1
    rng = backend.rng(5)
    model.sample_prior(x.shape[0], rng)                                      # the sleep phase's h_L, drawn first
    below = x if top == 1 else backend.to_numpy(model.recognize(backend.asarray(x), rng)[0][top - 2])  # h_{L-1}
    target = expit(below @ p[f"rec.{top}.W"] + p[f"rec.{top}.b"]).mean(0)    # <Q(h_L = 1 | h_{L-1})>
    _, grads, targets = model.loss_grads_and_targets(x, rng=backend.rng(5))
    expected = (1 - rho) * expit(p["prior.b"]) + rho * target
    np.testing.assert_allclose(expit(backend.to_numpy(targets["prior.b"])), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(grads["prior.b"]), 0.0)
    for name, value in model.params.items():                                 # nothing written onto the model
        np.testing.assert_array_equal(backend.to_numpy(value), p[name], err_msg=name)


def test_rbm_prior_is_trained_by_cd_on_the_wake_samples(numpy_backend):
    """The RBM prior learns by CD on the wake states; its persistent sleep chains are state created by
    init_training_state (never lazily by a training step) and advanced by every step."""
    model = HelmholtzMachine((16, 6), seed=0, prior="rbm", rbm_hidden=4)
    assert set(k for k in model.params if k.startswith("prior.")) == {"prior.W", "prior.b", "prior.c"}
    X, _ = datasets.load("hinton-bars", n_train=200)
    with pytest.raises(RuntimeError, match=r"call model.init_training_state\(batch_size, rng\)"):
        model.loss_and_grads(X[:50])            # no chains yet: the error names the call that makes them
    assert model.prior_chains is None
    model.init_training_state(50, numpy_backend.rng(1))
    assert model.prior_chains.shape == (50, 6)
    model.loss_and_grads(X[:50])
    chains = model.prior_chains.copy()
    model.loss_and_grads(X[:20])                # a smaller batch: the same 50 chains advance, the first 20 are used
    assert model.prior_chains.shape == (50, 6) and not np.array_equal(model.prior_chains, chains)
    chains = model.prior_chains.copy()
    with pytest.raises(ValueError, match=r"needs 200 sleep chains.*init_training_state\(200, rng\)"):
        model.loss_and_grads(X)                 # a larger batch: an error, not chains restarted at its size
    np.testing.assert_array_equal(model.prior_chains, chains)
    model.init_training_state(200, numpy_backend.rng(2))
    _, grads = model.loss_and_grads(X)
    assert model.prior_chains.shape == (200, 6)
    assert {"prior.W", "prior.b", "prior.c"} <= set(grads)
    assert float(np.abs(grads["prior.W"]).sum()) > 0
    kept = model.prior_chains
    model.init_training_state(100, numpy_backend.rng(3))   # enough chains already: kept, as an RBM's PCD chains are
    assert model.prior_chains is kept


@pytest.mark.parametrize("options", [dict(algorithm="wake-sleep", prior_update="gradient"),
                                     dict(algorithm="wake-sleep", prior_update="moment"),
                                     dict(algorithm="rws", k=5), dict(prior="rbm", rbm_hidden=4)],
                         ids=["ws-gradient", "ws-moment", "rws", "rbm-prior"])
@pytest.mark.long
def test_training_on_hinton_bars_reduces_the_exact_kl(backend, options):
    patterns, probs = datasets.data_distribution("hinton-bars")
    train = datasets.sample_distribution(patterns, probs, 10000, seed=0)
    model = HelmholtzMachine((16, 8, 1) if options.get("prior") != "rbm" else (16, 8), seed=0, **options)
    before = kl_data_model(probs, backend.to_numpy(model.log_likelihood(patterns, method="exact")))
    history = refvae.fit(model, train, epochs=1, batch_size=10, optimizer=refvae.SGD(0.1, momentum=0.9),
                         progress=False)
    after = kl_data_model(probs, backend.to_numpy(model.log_likelihood(patterns, method="exact")))
    assert after < 0.5 * before, (before, after)
    assert after >= -1e-6
    assert math.isfinite(history["train_loss"][-1]) and "prior_gap_max" in history


def test_kl_data_model_is_zero_for_the_data_itself_and_positive_otherwise():
    patterns, probs = datasets.data_distribution("hinton-bars")
    assert kl_data_model(probs, np.log(probs)) == pytest.approx(0.0, abs=1e-12)
    uniform = np.full(len(probs), -math.log(len(probs)))
    assert kl_data_model(probs, uniform) == pytest.approx(math.log(30) + np.sum(probs * np.log(probs)))
    assert kl_data_model(probs, uniform) > 0
    assert kl_data_model(probs, np.where(np.arange(30) == 0, -np.inf, np.log(probs))) == math.inf
    with pytest.raises(ValueError, match="sum to 1"):
        kl_data_model(probs * 2, np.log(probs))
    with pytest.raises(ValueError, match="same length"):
        kl_data_model(probs, np.log(probs)[:-1])


# ------------------------------------------------------------------------------------------------------
# Datasets with known distributions
# ------------------------------------------------------------------------------------------------------
def test_hinton_bars_distribution():
    patterns, probs = datasets.hinton_bars(side=4, p=0.2, p_vertical=2 / 3)
    assert patterns.shape == (30, 16) and probs.sum() == pytest.approx(1.0, abs=1e-12)
    blank = np.all(patterns == 0, axis=1)
    assert probs[blank][0] == pytest.approx(0.8 ** 4)
    full = np.all(patterns == 1, axis=1)
    assert probs[full][0] == pytest.approx(0.2 ** 4)
    one_vertical = [i for i, pt in enumerate(patterns.reshape(-1, 4, 4))
                    if pt.sum() == 4 and np.all(pt[:, 0] == 1)]
    assert probs[one_vertical[0]] == pytest.approx(2 / 3 * 0.2 * 0.8 ** 3)
    draws = datasets.sample_distribution(patterns, probs, 100000, seed=0)
    freq = np.mean(np.all(draws == 0, axis=1))
    assert abs(freq - 0.4096) < 4 * math.sqrt(0.4096 * 0.5904 / 100000)
    p_bs, q_bs = datasets.data_distribution("bars", side=3)
    assert p_bs.shape == (14, 9) and np.allclose(q_bs, 1 / 14)
    with pytest.raises(ValueError, match="p must be in"):
        datasets.hinton_bars(p=1.5)
    with pytest.raises(ValueError, match="no exact distribution"):
        datasets.data_distribution("mnist-10k")
    with pytest.raises(TypeError, match="it accepts side, p, p_vertical"):
        datasets.data_distribution("hinton-bars", n_train=5)
    with pytest.raises(ValueError, match="summing to 1"):
        datasets.sample_distribution(p_bs, q_bs[:-1], 5)


# ------------------------------------------------------------------------------------------------------
# Checkpoints, command line, bad input
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prior", ["factorial", "rbm"])
def test_checkpoint_round_trip(numpy_backend, tmp_path, prior):
    model = _random_machine(numpy_backend, (4, 3, 2), prior=prior, seed=7, algorithm="rws", k=3)
    X = _all_binary(4)
    model.init_training_state(X.shape[0], numpy_backend.rng(0))   # the RBM prior's sleep chains now exist
    model.loss_and_grads(X)
    model.save(tmp_path / "hm.npz")
    loaded = refvae.load(tmp_path / "hm.npz")
    assert isinstance(loaded, HelmholtzMachine) and loaded.config == model.config
    np.testing.assert_array_equal(loaded.log_likelihood(X), model.log_likelihood(X))
    if prior == "rbm":
        assert loaded.prior_chains is not None
        np.testing.assert_array_equal(loaded.prior_chains, model.prior_chains)


@pytest.mark.long
def test_resume_with_the_rbm_prior_is_exact(backend, tmp_path):
    """2 epochs straight and 1 + 1 resumed from the checkpoint agree bit for bit: the nested RBM prior draws its
    CD samples from the generator fit passes to the training step (seeded by (seed, epoch)), and the sleep chains,
    created by init_training_state at the start of the run, are checkpointed."""
    X, _ = datasets.load("hinton-bars", n_train=2000)
    kw = dict(batch_size=10, seed=3, progress=False)
    make = lambda: HelmholtzMachine((16, 6), prior="rbm", rbm_hidden=4)                      # noqa: E731
    full = make()
    h_full = refvae.fit(full, X, epochs=2, optimizer=refvae.SGD(0.1, momentum=0.9), **kw)
    refvae.fit(make(), X, epochs=1, optimizer=refvae.SGD(0.1, momentum=0.9), checkpoint=tmp_path / "c.npz", **kw)
    resumed = make()
    h = refvae.fit(resumed, X, epochs=2, optimizer=refvae.SGD(0.1, momentum=0.9), checkpoint=tmp_path / "c.npz",
                   resume=True, **kw)
    assert set(resumed.params) == set(full.params)
    for name in full.params:
        np.testing.assert_array_equal(backend.to_numpy(resumed.params[name]), backend.to_numpy(full.params[name]),
                                      err_msg=name)
    np.testing.assert_array_equal(backend.to_numpy(resumed.prior_chains), backend.to_numpy(full.prior_chains))
    assert h["train_loss"] == h_full["train_loss"]


def test_command_line_train_and_evaluate(tmp_path, capsys):
    from refvae.app import main

    with refvae.use_backend("numpy"):
        assert main(["train", "helmholtz", "--dataset", "hinton-bars", "--layers", "8,1", "--epochs", "2",
                     "--train-size", "2000", "--init-std", "0.1", "--out", str(tmp_path / "bars"), "--no-progress"]) == 0
        metrics = json.loads((tmp_path / "bars" / "metrics.json").read_text())
        assert metrics["model"]["init_std"] == 0.1 and metrics["test"]["kl_data_model"] > 0 and len(metrics["history"]["kl_data_model"]) == 2
        for name in ["curves.png", "dreams.png", "firing_rates.png"]:
            assert (tmp_path / "bars" / name).stat().st_size > 1000
        assert main(["train", "helmholtz", "--dataset", "mnist-10k", "--layers", "30,25", "--algorithm", "rws",
                     "--k", "2", "--epochs", "1", "--train-size", "200", "--test-size", "20", "--iw-samples", "10",
                     "--out", str(tmp_path / "mnist"), "--no-progress"]) == 0
        metrics = json.loads((tmp_path / "mnist" / "metrics.json").read_text())["test"]
        assert metrics["method"].startswith("importance") and metrics["log_likelihood"] < 0
        assert main(["train", "helmholtz", "--dataset", "mnist-10k", "--layers", "8,4", "--epochs", "1",
                     "--train-size", "200", "--test-size", "20", "--out", str(tmp_path / "small"), "--no-progress"]) == 0
        metrics = json.loads((tmp_path / "small" / "metrics.json").read_text())["test"]
        assert metrics["method"].startswith("exact") and metrics["n"] == 20 and metrics["log_likelihood"] < 0
        capsys.readouterr()
        assert main(["evaluate", str(tmp_path / "bars" / "checkpoint.npz"), "--dataset", "hinton-bars"]) == 0
        assert "KL(data || model)" in capsys.readouterr().out
        # 24 hidden units cannot be enumerated: the KL over the patterns uses importance-sampled likelihoods
        assert main(["train", "helmholtz", "--dataset", "bars", "--layers", "16,8", "--epochs", "1", "--train-size",
                     "300", "--iw-samples", "20", "--out", str(tmp_path / "bs"), "--no-progress"]) == 0
        metrics = json.loads((tmp_path / "bs" / "metrics.json").read_text())
        assert metrics["test"]["method"].startswith("importance") and metrics["test"]["kl_data_model"] > 0
        assert "kl_data_model" not in metrics["history"]


def test_bad_input(numpy_backend):
    with pytest.raises(ValueError, match="at least one hidden layer"):
        HelmholtzMachine((16,))
    with pytest.raises(ValueError, match="positive integer"):
        HelmholtzMachine((16, 0))
    with pytest.raises(ValueError, match="use algorithm='rws'"):
        HelmholtzMachine((16, 4), k=5)
    with pytest.raises(ValueError, match="algorithm must be"):
        HelmholtzMachine((16, 4), algorithm="backprop")
    with pytest.raises(ValueError, match="moment"):
        HelmholtzMachine((16, 4), prior="rbm", prior_update="moment")
    with pytest.raises(ValueError, match=r"prior_rate must be in \(0, 1\]"):
        HelmholtzMachine((16, 4), prior_rate=0.0)
    with pytest.raises(ValueError, match="init_std must be >= 0"):
        HelmholtzMachine((16, 4), init_std=-0.1)
    model = HelmholtzMachine((16, 12, 10))
    with pytest.raises(ValueError, match=rf"2\^22 configurations.*limit of {MAX_HIDDEN_ENUMERATION}.*importance"):
        model.log_likelihood(np.zeros((2, 16)), method="exact")
    with pytest.raises(refvae.DataError, match=r"values in \[2, 2\].*pixels / 255"):
        model.loss_and_grads(np.full((2, 16), 2.0))
    with pytest.raises(refvae.DataError, match="15 columns but the model expects 16"):
        model.loss_and_grads(np.zeros((2, 15)))
    with pytest.raises(ValueError, match=r"hs\[1\] \(layer 2\) has shape \(2, 9\), expected \(2, 10\)"):
        model.log_joint(np.zeros((2, 16)), [np.zeros((2, 12)), np.zeros((2, 9))])
    with pytest.raises(ValueError, match="list of 2 arrays"):
        model.log_q([np.zeros((2, 12))], np.zeros((2, 16)))
    with pytest.raises(ValueError, match="method must be"):
        model.log_likelihood(np.zeros((2, 16)), method="ais")
    model.generative[1].params["W"] = np.zeros((10, 11))
    with pytest.raises(ValueError, match=r"generative layer 2 has W \(10, 11\)"):
        model._check_layers()
    nan_model = HelmholtzMachine((4, 2))
    nan_model.params["gen.1.W"][0, 0] = np.nan
    with pytest.raises(refvae.TrainingError if hasattr(refvae, "TrainingError") else ValueError):
        refvae.fit(nan_model, _all_binary(4), epochs=1, batch_size=4, optimizer=refvae.SGD(0.1), progress=False)


@pytest.mark.parametrize("options", [dict(algorithm="wake-sleep"), dict(algorithm="rws", k=3)], ids=["ws", "rws"])
def test_loss_and_grads_returns_exactly_the_checked_updates(backend, options):
    """The training step shares its forward passes between loss and updates; with the same random draws it must
    give the public (finite-difference-checked) wake_grads and sleep_grads, combined as documented. The step
    writes nothing onto the machine, so the machine itself replays its draws from the same generator."""
    xp = backend.xp
    b = HelmholtzMachine((6, 4, 3), seed=3, dtype="float64", **options)
    x = _all_binary(6)[::5]
    loss, grads = b.loss_and_grads(x, rng=backend.rng(9))
    k = b.k
    rng = backend.rng(9)
    xs = rules.repeat_rows(b.validate_data(x), k)
    h_top = b.sample_prior(x.shape[0], rng)                          # the sleep phase's top states, drawn first
    hs, _ = b.recognize(xs, rng)                                     # the wake phase
    x_dream, h_dream = rules.dream(b.generative, h_top, rng)         # the sleep phase's dreams
    sleep = b.sleep_grads(x_dream, h_dream)
    log_w = xp.reshape(b.log_joint(xs, hs) - b.log_q(hs, xs), (x.shape[0], k))
    if k == 1:
        expected = {**b.wake_grads(xs, hs), **sleep}
        expected_loss = -float(xp.mean(log_w))
    else:
        lse = refvae.numerics.logsumexp(log_w, axis=1, keepdims=True)
        weights = xp.reshape(xp.exp(log_w - lse), (x.shape[0] * k,)) / x.shape[0]
        q_wake = b.sleep_grads(xs, hs, weights)
        expected = {**b.wake_grads(xs, hs, weights), **{n: 0.5 * (q_wake[n] + sleep[n]) for n in sleep}}
        expected_loss = -float(xp.mean(lse)) + math.log(k)
    assert loss == pytest.approx(expected_loss, abs=1e-12)
    rng = backend.rng(9)
    b.sample_prior(x.shape[0], rng)
    assert b.loss(x, rng=rng) == pytest.approx(loss, abs=1e-12)     # the same monitored loss, same wake draws
    assert set(grads) == set(expected)
    for name in grads:
        np.testing.assert_allclose(backend.to_numpy(grads[name]), backend.to_numpy(expected[name]), rtol=0, atol=1e-12)


def test_init_std(numpy_backend):
    zero = HelmholtzMachine((6, 4, 2), init_std=0.0)
    assert all(float(np.abs(v).max()) == 0.0 for k, v in zero.params.items() if not k.startswith("prior"))
    small = HelmholtzMachine((600, 400), init_std=0.1, seed=1)
    W = small.params["gen.1.W"]
    assert abs(float(W.std()) - 0.1) < 0.002 and float(np.abs(small.params["rec.1.b"]).max()) == 0.0
    assert small.config["init_std"] == 0.1
    default = HelmholtzMachine((600, 400), seed=1)
    assert float(np.abs(default.params["gen.1.W"]).max()) <= 1 / math.sqrt(400)


def test_rws_resampling_draws_rows_with_their_weights(backend):
    """RWS with an RBM prior feeds the RBM one top-layer sample per example, drawn by its importance weights."""
    model = HelmholtzMachine((4, 2), seed=0, dtype="float64")
    n, k, omega = 20000, 3, np.array([0.2, 0.5, 0.3])
    states = backend.asarray(np.tile(np.arange(k, dtype=np.float64), n).reshape(n * k, 1))   # row i*k + j holds j
    picked = backend.to_numpy(rules.resample(states, backend.asarray(np.tile(omega, (n, 1))), model.rng))[:, 0]
    freq = np.bincount(picked.astype(int), minlength=k) / n
    assert np.all(np.abs(freq - omega) < 4 * np.sqrt(omega * (1 - omega) / n)), freq


# ------------------------------------------------------------------------------------------------------
# algorithm="exact": the exact likelihood gradient by enumeration
# ------------------------------------------------------------------------------------------------------
def test_exact_step_in_blocks_equals_one_block_and_its_loss_is_the_likelihood(backend):
    """The exact step pairs every example with every hidden configuration in blocks of states (at most EXACT_ROWS
    pairs by default): many small blocks give the same gradients as one, in the textbook form and in its twin, the
    loss is the exact -mean log P(x), the moment prior's target is the exact <P(h_L = 1 | x)>, and nothing is drawn
    at random."""
    model = _random_machine(backend, (5, 3, 2), seed=4, algorithm="exact")
    x = (np.random.default_rng(0).random((7, 5)) < 0.5).astype(np.float64)
    loss, grads = model.loss_and_grads(x)
    args = (model.generative, model.recognition, model.log_prior_function(), backend.asarray(x))
    for fast in (False, True):
        loss_blocks, grads_blocks, top = rules.exact_step(*args, fast=fast, states_per_block=1)   # 1 state per block
        grads_blocks.update(rules.prior_step(model.prior_params, top)[0])
        assert loss == pytest.approx(float(loss_blocks), abs=1e-12)
        assert set(grads_blocks) == set(grads)
        for name in grads:
            np.testing.assert_allclose(backend.to_numpy(grads_blocks[name]), backend.to_numpy(grads[name]),
                                       atol=1e-12, err_msg=name)
    assert loss == pytest.approx(-float(np.mean(backend.to_numpy(model.log_likelihood(x)))), abs=1e-12)
    assert loss == pytest.approx(model.loss(x), abs=1e-12)
    # the exact posterior's top-layer mean, by a direct host computation
    p = _host(model, backend)
    H1, H2 = _all_binary(3), _all_binary(2)
    log_joint = np.array([[_bern_logp(h2, p["prior.b"]) + _bern_logp(h1, h2 @ p["gen.2.W"] + p["gen.2.b"])
                           + _bern_logp(xi, h1 @ p["gen.1.W"] + p["gen.1.b"]) for h1 in H1 for h2 in H2] for xi in x])
    post = np.exp(log_joint - np.logaddexp.reduce(log_joint, axis=1, keepdims=True))     # (7, 32)
    tops = np.array([h2 for h1 in H1 for h2 in H2])
    _, _, top = rules.exact_step(*args, fast=False)
    np.testing.assert_allclose(backend.to_numpy(top.q_mean), (post @ tops).mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(top.mean), (post @ tops).mean(axis=0), atol=1e-12)


def test_exact_algorithm_checks_its_limits(numpy_backend):
    with pytest.raises(ValueError, match=r"2\^21 configurations of the 21 hidden units.*at most 20"):
        HelmholtzMachine((30, 16, 5), algorithm="exact")
    HelmholtzMachine((30, 16, 4), algorithm="exact")
    with pytest.raises(ValueError, match="needs prior='factorial'"):
        HelmholtzMachine((6, 3), algorithm="exact", prior="rbm")
    with pytest.raises(ValueError, match="use algorithm='rws'"):
        HelmholtzMachine((6, 3), algorithm="exact", k=5)
    assert "exact" in repr(HelmholtzMachine((6, 3), algorithm="exact"))


def test_exact_training_reaches_a_stationary_point_with_the_prior_at_the_aggregate(numpy_backend):
    """Full-batch exact training of a 6-2 machine on four patterns: the gradient of -mean log P(x) vanishes, and
    with it the prior's: sigmoid(b) equals the exact aggregate posterior <P(h = 1 | x)> (the adaptive prior's
    fixed point) to below 0.005, while Q approaches the exact posterior."""
    from wakesleep.checks import posterior_kl

    rng = np.random.default_rng(1)
    patterns = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], float)
    X = patterns[rng.integers(0, 4, 200)]
    model = HelmholtzMachine((6, 2), seed=0, dtype="float64", algorithm="exact")
    opt = refvae.Adam(0.05)
    kl_start = posterior_kl(model, X)
    for step in range(3000):
        opt.lr = 0.05 if step < 2000 else 0.005
        loss, grads = model.loss_and_grads(X)
        opt.step(model.params, grads)
    _, grads = model.loss_and_grads(X)
    assert max(float(np.max(np.abs(grads[n]))) for n in grads if not n.startswith("rec.")) < 1e-3
    _, _, top = rules.exact_step(model.generative, model.recognition, model.log_prior_function(), X, fast=False)
    assert np.max(np.abs(expit(model.params["prior.b"]) - top.q_mean)) < 0.005
    assert loss < -np.log(0.25 + 1e-9) + 0.05                     # four equally likely patterns: log 4 nats at best
    assert posterior_kl(model, X) < 0.1 * kl_start


# ------------------------------------------------------------------------------------------------------
# State and randomness: generators passed in, nothing written, resumable from a checkpoint
# ------------------------------------------------------------------------------------------------------
STEP_OPTIONS = [dict(algorithm="wake-sleep"), dict(algorithm="wake-sleep", prior_update="moment"),
                dict(algorithm="rws", k=3, prior_update="moment"), dict(prior="rbm", rbm_hidden=3),
                dict(prior="rbm", rbm_hidden=3, algorithm="rws", k=2)]
STEP_IDS = ["ws", "ws-moment", "rws-moment", "rbm-prior", "rbm-prior-rws"]


@pytest.mark.parametrize("options", STEP_OPTIONS, ids=STEP_IDS)
def test_training_steps_draw_only_from_the_rng_passed_in_and_write_no_parameter(backend, options):
    """loss_grads_and_targets(x, rng) and loss(x, rng) draw from rng alone: the same generator state gives the same
    step bit for bit, the machine's default generator and the RBM prior's own are left untouched (no property
    rebinds one to the other), and no parameter is written (the moment prior's step comes back as a target)."""
    model = HelmholtzMachine((6, 4, 3), seed=2, dtype="float64", **options)
    assert not isinstance(getattr(type(model), "rng", None), property)
    x = backend.asarray(_all_binary(6)[::4])                                  # (16, 6)
    model.init_training_state(x.shape[0], backend.rng(1))
    params = {k: backend.to_numpy(v, copy=True) for k, v in model.params.items()}
    chains = None if model.prior_chains is None else backend.to_numpy(model.prior_chains, copy=True)
    first = model.loss_grads_and_targets(x, rng=backend.rng(4))
    for name, value in model.params.items():
        np.testing.assert_array_equal(backend.to_numpy(value), params[name], err_msg=name)
    assert set(first[2]) == ({"prior.b"} if options.get("prior_update") == "moment" else set())
    if chains is not None:                                                    # the one state a step advances
        assert not np.array_equal(backend.to_numpy(model.prior_chains), chains)
        model.set_state({"prior_chains": chains})
    again = model.loss_grads_and_targets(x, rng=backend.rng(4))
    assert again[0] == first[0]
    for part in (1, 2):
        assert set(again[part]) == set(first[part])
        for name in first[part]:
            np.testing.assert_array_equal(backend.to_numpy(again[part][name]), backend.to_numpy(first[part][name]))
    assert model.loss(x, rng=backend.rng(6)) == model.loss(x, rng=backend.rng(6))
    np.testing.assert_array_equal(backend.to_numpy(model.rng.uniform((8,), "float64")),
                                  backend.to_numpy(backend.rng((2, 1)).uniform((8,), "float64")))
    if model.prior_rbm is not None:
        np.testing.assert_array_equal(backend.to_numpy(model.prior_rbm.rng.uniform((8,), "float64")),
                                      backend.to_numpy(backend.rng(2).uniform((8,), "float64")))


@pytest.mark.parametrize("options", STEP_OPTIONS, ids=STEP_IDS)
def test_steps_resumed_from_a_checkpoint_are_bit_exact(numpy_backend, tmp_path, options):
    """Four steps straight, and two steps, a checkpoint (parameters, the sleep chains) and two more steps with the
    same generators and the optimiser's state, give the same parameters and chains bit for bit (the trainer's part
    done by hand: the rng of every step passed in, the targets written after the optimiser's step)."""
    X = _all_binary(6)[::2]                                                   # (32, 6): 4 batches of 8

    def run(model, opt, steps):
        for i in steps:
            _, grads, targets = model.loss_grads_and_targets(X[8 * i:8 * i + 8], rng=numpy_backend.rng((7, i)))
            opt.step(model.params, grads)
            for name, value in targets.items():
                model.params[name][...] = value

    def start():
        model = HelmholtzMachine((6, 4, 3), seed=5, dtype="float64", **options)
        model.init_training_state(8, numpy_backend.rng(0))
        return model, refvae.SGD(0.1, momentum=0.9)

    full, opt_full = start()
    run(full, opt_full, range(4))
    half, opt_half = start()
    run(half, opt_half, range(2))
    half.save(tmp_path / "half.npz")
    resumed, opt = HelmholtzMachine.load(tmp_path / "half.npz"), refvae.SGD(0.1, momentum=0.9)
    opt.load_state_dict(opt_half.state_dict())
    run(resumed, opt, range(2, 4))
    for name in full.params:
        np.testing.assert_array_equal(resumed.params[name], full.params[name], err_msg=name)
    if full.prior_chains is not None:
        np.testing.assert_array_equal(resumed.prior_chains, full.prior_chains)
    else:
        assert resumed.prior_chains is None


def test_wakesleep_functions_are_short_and_the_rules_do_not_reach_into_the_model():
    """No function in wakesleep/ is longer than 60 lines (docstring excluded); rules.py imports nothing from the
    package (its functions take layers, arrays and a generator, never the model)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "wakesleep"
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:] or body
                length = body[-1].end_lineno - body[0].lineno + 1
                assert length <= 60, f"{path.name}::{node.name} has {length} lines"
    rules_tree = ast.parse((root / "rules.py").read_text())
    from_package = [ast.unparse(node) for node in ast.walk(rules_tree) if isinstance(node, ast.ImportFrom)
                    and (node.level > 0 or (node.module or "").split(".")[0] in ("wakesleep", "rbm"))]
    from_package += [ast.unparse(node) for node in ast.walk(rules_tree) if isinstance(node, ast.Import)
                     and any(alias.name.split(".")[0] in ("wakesleep", "rbm") for alias in node.names)]
    assert not from_package


def test_init_visible_bias_sets_the_data_log_odds(backend):
    """gen.1.b = log(p / (1 - p)) of the pixel means, clipped: with every hidden unit off, P(x_i = 1 | h) is the
    data's rate of pixel i (a constant pixel at the clip, not infinity)."""
    X = np.zeros((8, 4))
    X[:2, 0] = 1.0                                                    # rate 1/4
    X[:, 1] = 1.0                                                     # always on: clipped at 1 - 1e-3
    X[:6, 2] = 1.0                                                    # rate 3/4; pixel 3 never on
    model = HelmholtzMachine((4, 3, 2), seed=0, dtype="float64")
    model.init_visible_bias(backend.asarray(X))
    b = backend.to_numpy(model.params["gen.1.b"])
    np.testing.assert_allclose(expit(b), [0.25, 1 - 1e-3, 0.75, 1e-3], rtol=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 1\]|rescale"):
        model.init_visible_bias(backend.asarray(2 * X))


def test_recognize_draws_each_layer_from_the_logits_of_the_layer_below(backend):
    """rules.recognize: h_l ~ Bernoulli(sigmoid(h_{l-1} R_l + r_l)) bottom-up from h_0 = x, each draw from the
    probabilities of the sample below it, and the logits it returns are recognition_logits of the states drawn."""
    from wakesleep import rules

    model = _random_machine(backend, (5, 4, 3), seed=2)
    p = _host(model, backend)
    x = (np.random.default_rng(3).random((6, 5)) < 0.5).astype(float)
    from conftest import recording_rng

    gen, draws = recording_rng(backend, 7)
    hs, rec_logits = rules.recognize(model.recognition, backend.asarray(x), gen)
    assert len(draws) == 2
    (p1, h1), (p2, h2) = draws
    np.testing.assert_allclose(p1, expit(x @ p["rec.1.W"] + p["rec.1.b"]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(p2, expit(h1 @ p["rec.2.W"] + p["rec.2.b"]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(hs[0]), h1)
    np.testing.assert_array_equal(backend.to_numpy(hs[1]), h2)
    for got, want in zip(rec_logits, rules.recognition_logits(model.recognition, backend.asarray(x), hs)):
        np.testing.assert_allclose(backend.to_numpy(got), backend.to_numpy(want), rtol=0, atol=1e-12)
