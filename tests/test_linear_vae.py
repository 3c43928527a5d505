"""The linear Gaussian VAE is probabilistic PCA or factor analysis: closed forms against brute force, and the ELBO
equal to the exact log-likelihood at the maximum-likelihood solution with the optimal encoder."""

import numpy as np
import pytest
from scipy import stats

import refvae
from refvae.vae import linear


def _data(n=400, d=6, q=2, seed=0, per_dimension=False):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q))
    psi = rng.uniform(0.1, 0.6, d) if per_dimension else np.full(d, 0.3)
    Z = rng.normal(size=(n, q))
    return Z @ W.T + rng.normal(size=(n, d)) * np.sqrt(psi) + rng.normal(size=d)


def test_exact_log_likelihood_and_posterior_against_scipy(numpy_backend):
    X = _data()
    rng = np.random.default_rng(1)
    model = linear.LinearGaussian(rng.normal(size=6), rng.normal(size=(6, 2)), rng.uniform(0.2, 1.0, 6))
    C = model.W @ model.W.T + np.diag(model.psi)
    np.testing.assert_allclose(linear.exact_log_likelihood(model, X),
                               stats.multivariate_normal(model.mean, C).logpdf(X), rtol=1e-12)
    # the posterior by Bayes' rule on the joint Gaussian of (z, x)
    mean, cov = linear.exact_posterior(model, X[:3])
    gain = model.W.T @ np.linalg.inv(C)
    np.testing.assert_allclose(mean, (X[:3] - model.mean) @ gain.T, rtol=1e-10)
    np.testing.assert_allclose(cov, np.eye(2) - gain @ model.W, rtol=1e-10, atol=1e-12)


def test_ppca_ml_is_the_maximum_of_the_likelihood(numpy_backend):
    X = _data()
    ml = linear.ppca_ml(X, 2)
    best = float(np.mean(linear.exact_log_likelihood(ml, X)))
    rng = np.random.default_rng(2)
    for _ in range(5):                                          # small perturbations of W and sigma^2 lose
        W = ml.W + 0.01 * rng.normal(size=ml.W.shape)
        other = linear.LinearGaussian(ml.mean, W, ml.psi * (1 + 0.01 * rng.normal()))
        assert float(np.mean(linear.exact_log_likelihood(other, X))) < best
    gram = ml.W.T @ ml.W
    assert abs(gram[0, 1]) < 1e-10                              # orthogonal columns


def test_factor_analysis_em_matches_scikit_learn(numpy_backend):
    sklearn = pytest.importorskip("sklearn.decomposition")
    X = _data(per_dimension=True)
    fa = linear.factor_analysis_em(X, 2)
    ours = float(np.mean(linear.exact_log_likelihood(fa, X)))
    theirs = sklearn.FactorAnalysis(n_components=2, tol=1e-10, max_iter=5000).fit(X).score(X)
    assert ours == pytest.approx(theirs, abs=1e-4)


@pytest.mark.parametrize("decoder_variance", ["shared", "per-dimension"])
def test_the_elbo_is_tight_at_the_closed_form_optimum(backend, decoder_variance):
    """With the ML decoder and the optimal encoder q(z|x) is the exact posterior, so every importance weight
    log p(x, z) - log q(z | x) equals log p(x): the VAE's own importance-weighted estimate, with k = 1 (the
    ELBO's integrand) or more samples, equals the exact log-likelihood for any noise draw, to 1e-10."""
    X = _data(per_dimension=decoder_variance == "per-dimension")
    solution = linear.ppca_ml(X, 2) if decoder_variance == "shared" else linear.factor_analysis_em(X, 2)
    solution = linear.LinearGaussian(*(backend.asarray(a) for a in (solution.mean, solution.W, solution.psi)))
    vae = refvae.GaussianVAE(6, 2, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance,
                             dtype="float64")
    linear.load_into_vae(vae, solution)
    exact = backend.to_numpy(linear.exact_log_likelihood(solution, X))
    for k, seed in [(1, 0), (1, 1), (7, 2)]:
        np.testing.assert_allclose(backend.to_numpy(vae.log_likelihood(X, k=k, seed=seed)), exact, rtol=0, atol=1e-10)
    # the analytic ELBO is the mean of the one-sample ELBO over the noise: tight up to Monte Carlo error
    elbo = np.mean([backend.to_numpy(vae.elbo(X, np.random.default_rng(s).normal(size=(X.shape[0], 2))))
                    for s in range(200)], axis=0)
    assert abs(float(np.mean(elbo - exact))) < 0.02
