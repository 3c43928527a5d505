"""Numerics: values against independent references (SciPy, quadrature), derivatives against float64
central differences, and finiteness at extreme logits."""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import refvae
from refvae import numerics as nm

ELEMENTWISE = [
    (nm.softplus, nm.softplus_grad, lambda x: np.logaddexp(0.0, x)),
    (nm.sigmoid, nm.sigmoid_grad, special.expit),
    (nm.log_sigmoid, nm.log_sigmoid_grad, special.log_expit),
]


@pytest.mark.parametrize("f, df, ref", ELEMENTWISE, ids=["softplus", "sigmoid", "log_sigmoid"])
def test_elementwise_values_and_derivatives(backend, f, df, ref, host_rng):
    x_host = host_rng.normal(0.0, 4.0, size=(7, 5))
    x = backend.asarray(x_host)
    np.testing.assert_allclose(backend.to_numpy(f(x)), ref(x_host), rtol=1e-12, atol=0)
    # derivative: gradient of sum(w * f(x)) with respect to x
    w = backend.asarray(host_rng.normal(size=x_host.shape))
    params = {"x": backend.asarray(x_host)}
    result = refvae.gradcheck(lambda p: float(backend.xp.sum(w * f(p["x"]))), params, {"x": w * df(params["x"])})
    assert result.max_error <= 1e-6, str(result)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_logits_stay_finite(backend, dtype):
    xp = backend.xp
    x = backend.asarray(np.array([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4]), dtype=dtype)
    target = backend.asarray(np.array([0.0, 1.0, 0.5, 1.0, 0.0, 0.3, 1.0]), dtype=dtype)
    outputs = [nm.softplus(x), nm.sigmoid(x), nm.log_sigmoid(x), nm.softplus_grad(x), nm.sigmoid_grad(x),
               nm.log_sigmoid_grad(x), nm.bernoulli_log_prob(target, x), nm.bernoulli_log_prob_grad(target, x),
               nm.logsumexp(x), nm.logsumexp_grad(x)]
    for out in outputs:
        assert bool(xp.all(xp.isfinite(out)))
    host = backend.to_numpy(nm.softplus(x))
    assert host[-1] == pytest.approx(1e4) and host[0] == 0.0
    sig = backend.to_numpy(nm.sigmoid(x))
    assert sig[0] == 0.0 and sig[-1] == 1.0 and sig[3] == 0.5
    if dtype == "float64":  # the left tail to full relative precision (1 - sigmoid(100) would round to 0)
        assert sig[1] == pytest.approx(special.expit(-100.0), rel=1e-12)
    # log-sigmoid of a very negative logit is the logit itself, not -inf
    assert backend.to_numpy(nm.log_sigmoid(x))[0] == pytest.approx(-1e4)
    # a confident wrong prediction costs ~1e4 nats, finitely
    lp = backend.to_numpy(nm.bernoulli_log_prob(backend.asarray(np.array([[1.0]]), dtype=dtype),
                                                backend.asarray(np.array([[-1e4]]), dtype=dtype)))
    assert lp[0] == pytest.approx(-1e4)


def test_logsumexp_matches_scipy_and_handles_minus_inf(backend, host_rng):
    a_host = host_rng.normal(0, 50, size=(4, 6))
    a_host[2] = -np.inf
    a = backend.asarray(a_host)
    out = backend.to_numpy(nm.logsumexp(a, axis=1))
    np.testing.assert_allclose(out[[0, 1, 3]], special.logsumexp(a_host[[0, 1, 3]], axis=1), rtol=1e-13)
    assert out[2] == -np.inf
    kept = nm.logsumexp(a, axis=0, keepdims=True)
    assert tuple(kept.shape) == (1, 6)


def test_logsumexp_derivative(backend, host_rng):
    a = backend.asarray(host_rng.normal(size=(3, 5)))
    w = backend.asarray(host_rng.normal(size=(3,)))
    params = {"a": a}
    grad = backend.xp.expand_dims(w, axis=1) * nm.logsumexp_grad(a, axis=1)
    result = refvae.gradcheck(lambda p: float(backend.xp.sum(w * nm.logsumexp(p["a"], axis=1))), params, {"a": grad})
    assert result.max_error <= 1e-6, str(result)


def test_bernoulli_log_prob_equals_textbook_form(backend, host_rng):
    x_host = host_rng.random((5, 8))
    l_host = host_rng.normal(0, 3, size=(5, 8))
    p = special.expit(l_host)
    expected = np.sum(x_host * np.log(p) + (1 - x_host) * np.log1p(-p), axis=1)
    out = nm.bernoulli_log_prob(backend.asarray(x_host), backend.asarray(l_host))
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-12)


def test_bernoulli_log_prob_derivative(backend, host_rng):
    x = backend.asarray(host_rng.random((4, 6)))
    w = backend.asarray(host_rng.normal(size=(4,)))
    params = {"logits": backend.asarray(host_rng.normal(size=(4, 6)))}
    grad = backend.xp.expand_dims(w, axis=1) * nm.bernoulli_log_prob_grad(x, params["logits"])
    result = refvae.gradcheck(lambda p: float(backend.xp.sum(w * nm.bernoulli_log_prob(x, p["logits"]))),
                              params, {"logits": grad})
    assert result.max_error <= 1e-6, str(result)


def test_gaussian_log_prob_matches_scipy_and_derivatives(backend, host_rng):
    x_host, m_host = host_rng.normal(size=(4, 3)), host_rng.normal(size=(4, 3))
    lv_host = host_rng.normal(0, 1, size=(4, 3))
    expected = stats.norm.logpdf(x_host, m_host, np.exp(0.5 * lv_host)).sum(axis=1)
    x = backend.asarray(x_host)
    out = nm.gaussian_log_prob(x, backend.asarray(m_host), backend.asarray(lv_host))
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-12)
    w = backend.asarray(host_rng.normal(size=(4,)))
    params = {"mean": backend.asarray(m_host), "logvar": backend.asarray(lv_host)}
    d_mean, d_lv = nm.gaussian_log_prob_grad(x, params["mean"], params["logvar"])
    w2 = backend.xp.expand_dims(w, axis=1)
    result = refvae.gradcheck(
        lambda p: float(backend.xp.sum(w * nm.gaussian_log_prob(x, p["mean"], p["logvar"]))),
        params, {"mean": w2 * d_mean, "logvar": w2 * d_lv})
    assert result.max_error <= 1e-6, str(result)


@pytest.mark.parametrize("mu, logvar", [(0.0, 0.0), (1.3, -0.7), (-2.0, 1.1)])
def test_kl_standard_normal_matches_quadrature(mu, logvar):
    sd = math.exp(0.5 * logvar)
    q = stats.norm(mu, sd)
    kl_quad, _ = integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z)), -30, 30, limit=200)
    with refvae.use_backend("numpy"):
        kl = nm.kl_standard_normal(np.array([[mu]]), np.array([[logvar]]))[0]
    assert kl == pytest.approx(kl_quad, rel=1e-9, abs=1e-12)


def test_kl_standard_normal_derivative(backend, host_rng):
    params = {"mu": backend.asarray(host_rng.normal(size=(3, 4))), "logvar": backend.asarray(host_rng.normal(size=(3, 4)))}
    w = backend.asarray(host_rng.normal(size=(3,)))
    w2 = backend.xp.expand_dims(w, axis=1)
    d_mu, d_lv = nm.kl_standard_normal_grad(params["mu"], params["logvar"])
    result = refvae.gradcheck(lambda p: float(backend.xp.sum(w * nm.kl_standard_normal(p["mu"], p["logvar"]))),
                              params, {"mu": w2 * d_mu, "logvar": w2 * d_lv})
    assert result.max_error <= 1e-6, str(result)


def test_gradcheck_detects_a_wrong_gradient(numpy_backend, host_rng):
    """The checker must be able to fail: a gradient off by 1% is caught."""
    params = {"x": host_rng.normal(size=(5,))}
    wrong = {"x": 1.01 * np.cos(params["x"])}
    result = refvae.gradcheck(lambda p: float(np.sum(np.sin(p["x"]))), params, wrong)
    assert not result.ok and result.max_error > 1e-3
    assert "FAIL" in str(result)
    right = refvae.gradcheck(lambda p: float(np.sum(np.sin(p["x"]))), params, {"x": np.cos(params["x"])})
    assert right.ok


def test_gradcheck_refuses_float32(numpy_backend):
    with pytest.raises(TypeError, match="float64"):
        refvae.gradcheck(lambda p: 0.0, {"w": np.zeros(3, np.float32)}, {"w": np.zeros(3)})


def test_clipped_logit_inverts_sigmoid_inside_the_clip_and_stays_finite_outside(backend, host_rng):
    p_host = host_rng.uniform(0.01, 0.99, size=(6, 4))
    np.testing.assert_allclose(backend.to_numpy(nm.clipped_logit(backend.asarray(p_host), 1e-3)),
                               special.logit(p_host), rtol=1e-12)
    edges = backend.to_numpy(nm.clipped_logit(backend.asarray(np.array([0.0, 1.0])), 1e-3))
    np.testing.assert_allclose(edges, special.logit([1e-3, 1 - 1e-3]), rtol=1e-12)
