"""Every fast form equals its textbook twin (the index is in refvae/fast.py): float64 to 1e-12, float32 to 1e-6
relative."""

import numpy as np
import pytest

from refvae import fast
from refvae import numerics as nm
from refvae.optim import Adam

TOLERANCE = {"float64": 1e-12, "float32": 1e-6}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_fast_equals_the_papers_algorithm(backend, host_rng, dtype):
    """Five steps of Adam(fast=True) (unnormalised sums, fused) against Adam(fast=False) (Algorithm 1)."""
    p0 = host_rng.normal(size=(6, 5))
    gs = [host_rng.normal(size=(6, 5)) for _ in range(5)]
    runs = {}
    for fast_form in (True, False):
        params = {"w": backend.asarray(p0.copy(), dtype=dtype)}           # (asarray may share host memory)
        opt = Adam(lr=0.05, betas=(0.8, 0.9), eps=1e-3, fast=fast_form)
        for g in gs:
            opt.step(params, {"w": backend.asarray(g, dtype=dtype)})
        runs[fast_form] = backend.to_numpy(params["w"])
    np.testing.assert_allclose(runs[True], runs[False], rtol=TOLERANCE[dtype])


def test_adam_textbook_form_is_algorithm_1(numpy_backend, host_rng):
    """The textbook form against the paper's lines written out here, three steps."""
    p0 = host_rng.normal(size=(3, 2))
    params = {"w": p0.copy()}
    opt = Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-3, fast=False)
    p, m, v = p0.copy(), 0.0, 0.0
    for t in range(1, 4):
        g = host_rng.normal(size=(3, 2))
        opt.step(params, {"w": g})
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        p = p - 0.1 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-3)
    np.testing.assert_allclose(params["w"], p, rtol=1e-13)
    assert set(opt.state_dict()["arrays"]) == {"m/w", "v/w"}


@pytest.mark.parametrize("saved_fast", [True, False])
def test_adam_state_converts_between_the_forms(numpy_backend, host_rng, saved_fast):
    """Two steps, the state saved by one form and loaded by the other, then a third step: equal to three steps."""
    p0, g1, g2, g3 = (host_rng.normal(size=4) for _ in range(4))
    straight = {"w": p0.copy()}
    opt = Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-3, fast=saved_fast)
    for g in (g1, g2, g3):
        opt.step(straight, {"w": g})
    first = Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-3, fast=saved_fast)
    resumed = {"w": p0.copy()}
    for g in (g1, g2):
        first.step(resumed, {"w": g})
    other = Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-3, fast=not saved_fast)
    other.load_state_dict(first.state_dict())
    other.step(resumed, {"w": g3})
    np.testing.assert_allclose(resumed["w"], straight["w"], rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bernoulli_nll_with_grad_equals_the_separate_functions(backend, host_rng, dtype):
    """numerics.bernoulli_nll_with_grad (the fused form, beside its twin) against the two textbook functions."""
    x = backend.asarray(host_rng.random((4, 9)), dtype=dtype)
    logits = backend.asarray(np.concatenate([host_rng.normal(0, 5, (4, 7)), [[1e4, -1e4]] * 4], axis=1), dtype=dtype)
    nll, grad = nm.bernoulli_nll_with_grad(x, logits)
    np.testing.assert_allclose(backend.to_numpy(nll), -backend.to_numpy(nm.bernoulli_log_prob(x, logits)),
                               rtol=TOLERANCE[dtype])
    np.testing.assert_allclose(backend.to_numpy(grad), -backend.to_numpy(nm.bernoulli_log_prob_grad(x, logits)),
                               rtol=TOLERANCE[dtype], atol=1e-300)
    assert np.all(np.isfinite(backend.to_numpy(nll))) and np.all(np.isfinite(backend.to_numpy(grad)))


def test_map_blocks_equals_the_plain_loop(backend):
    xp = backend.xp
    x = backend.asarray(np.arange(1000, dtype=np.float32).reshape(500, 2))
    blocks = fast.map_blocks(backend, lambda a, b: xp.sum(x[a:b, :], axis=1), 500, block=64)
    assert len(blocks) == 8
    np.testing.assert_array_equal(backend.to_numpy(xp.concat(blocks)), backend.to_numpy(xp.sum(x, axis=1)))
    assert fast.map_blocks(backend, lambda a, b: (a, b), 10, block=64) == [(0, 10)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_enumerated_moments_equal_the_two_pass_textbook_form(backend, host_rng, dtype):
    """The one-pass, blockwise enumeration of an RBM's hidden layer (rbm.partition.model_expectations_one_pass,
    what model_expectations runs by default) against rbm.partition.model_expectations(fast=False): log Z and every moment. float64 to 1e-12. In float32 both sum 2^10 states, so each is compared
    with the float64 result to 1e-5 of the largest entry (summation error), not with each other."""
    from rbm import BernoulliRBM
    from rbm.partition import model_expectations, model_expectations_one_pass

    params = {"W": host_rng.normal(size=(30, 10)), "b": host_rng.normal(size=30), "c": host_rng.normal(size=10)}
    model64 = BernoulliRBM(30, 10, dtype="float64")
    model64.set_params(params)
    truth = {k: backend.to_numpy(v) if k != "log_z" else v for k, v in model_expectations(model64, fast=False).items()}
    model = BernoulliRBM(30, 10, dtype=dtype)
    model.set_params(params)
    for form in (model_expectations(model), model_expectations_one_pass(model, block=100)):   # uneven blocks
        assert form["log_z"] == pytest.approx(truth["log_z"], rel=TOLERANCE[dtype] if dtype == "float64" else 1e-6)
        for k in ("v", "h", "vh"):
            tol = TOLERANCE[dtype] if dtype == "float64" else 1e-5
            np.testing.assert_allclose(backend.to_numpy(form[k]), truth[k], rtol=0, atol=tol * np.max(np.abs(truth[k])),
                                       err_msg=k)


@pytest.mark.parametrize("sizes", [(5, 3, 2), (6, 4), (5, 2, 2, 1)], ids=["two-layers", "one-layer", "three-layers"])
@pytest.mark.parametrize("prior_update", ["gradient", "moment"])
def test_helmholtz_exact_step_fast_equals_the_textbook_rows(backend, host_rng, sizes, prior_update):
    """wakesleep.rules.exact_step's two branches: the twin exact_step_fast (per-state sums, then matrix products,
    fast=True) against the textbook form (every (x, h) pair as a weighted row of the wake and sleep updates,
    fast=False): loss, every gradient and the top layer's statistics, in one block of states and in many blocks of
    three; and loss_grads_and_targets with fast_exact on and off (gradients and the moment prior's target)."""
    from wakesleep import HelmholtzMachine, rules

    model = HelmholtzMachine(sizes, seed=1, dtype="float64", algorithm="exact", prior_update=prior_update)
    model.set_params({k: host_rng.normal(size=tuple(v.shape)) for k, v in model.params.items()})
    x = backend.asarray((host_rng.random((7, sizes[0])) < 0.5).astype(np.float64))
    args = (model.generative, model.recognition, model.log_prior_function(), x)
    loss, grads, top = rules.exact_step(*args, fast=False)
    for states_per_block in (2**14, 3):
        loss_f, grads_f, top_f = rules.exact_step(*args, fast=True, states_per_block=states_per_block)
        assert float(loss_f) == pytest.approx(float(loss), abs=1e-12)
        assert set(grads_f) == set(grads)
        for k in grads:
            np.testing.assert_allclose(backend.to_numpy(grads_f[k]), backend.to_numpy(grads[k]), rtol=0, atol=1e-12,
                                       err_msg=k)
        for field in ("mean", "total", "q_mean"):
            np.testing.assert_allclose(backend.to_numpy(backend.asarray(getattr(top_f, field))),
                                       backend.to_numpy(backend.asarray(getattr(top, field))), rtol=0, atol=1e-12)
    model.fast_exact = False
    slow = model.loss_grads_and_targets(x)
    model.fast_exact = True
    quick = model.loss_grads_and_targets(x)
    assert quick[0] == pytest.approx(slow[0], abs=1e-12)
    assert set(quick[2]) == set(slow[2]) == ({"prior.b"} if prior_update == "moment" else set())
    for k in slow[1]:
        np.testing.assert_allclose(backend.to_numpy(quick[1][k]), backend.to_numpy(slow[1][k]), rtol=0, atol=1e-12)
    for k in slow[2]:
        np.testing.assert_allclose(backend.to_numpy(quick[2][k]), backend.to_numpy(slow[2][k]), rtol=0, atol=1e-12)
