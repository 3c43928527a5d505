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


def test_sample_covariance_and_ppca_use_the_maximum_likelihood_divisor(numpy_backend):
    """S divides by n, not n - 1 (the ML estimate): against NumPy's biased covariance, and pPCA's maximum equals
    Tipping & Bishop's closed form -n/2 [d log 2 pi + sum_{j<=q} log l_j + (d - q) log sigma^2 + d] computed from
    those eigenvalues (a divisor n - 1 leaves the log-likelihood 1e-5 nats lower: exact comparison, no seed)."""
    X = _data()
    mean, S = linear.sample_covariance(X)
    np.testing.assert_allclose(S, np.cov(X.T, bias=True), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-12)
    evals = np.sort(np.linalg.eigvalsh(np.cov(X.T, bias=True)))[::-1]
    d, q = X.shape[1], 2
    sigma2 = evals[q:].mean()
    closed_form = -0.5 * (d * np.log(2 * np.pi) + np.sum(np.log(evals[:q])) + (d - q) * np.log(sigma2) + d)
    ml = linear.ppca_ml(X, q)
    np.testing.assert_allclose(ml.psi, sigma2, rtol=1e-12)
    assert float(np.mean(linear.exact_log_likelihood(ml, X))) == pytest.approx(closed_form, abs=1e-10)


def test_factor_analysis_em_reaches_a_stationary_point(numpy_backend):
    """At a maximum of the factor-analysis likelihood (no variance at its floor) the ML equations hold with the
    biased sample covariance S: Psi = diag(S - W W^T) and S C^{-1} W = W (Rubin & Thayer 1982). EM stops within
    1e-5 of them; a covariance divided by n - 1 misses both by 0.25 % (n = 400)."""
    X = _data(per_dimension=True)
    S = np.cov(X.T, bias=True)
    fa = linear.factor_analysis_em(X, 2)
    C = fa.W @ fa.W.T + np.diag(fa.psi)
    assert np.all(fa.psi > 1e-3 * np.diag(S) * 1.01)                  # no variance held at its floor
    assert np.max(np.abs(fa.psi - np.diag(S - fa.W @ fa.W.T)) / np.diag(S)) < 1e-4
    assert np.max(np.abs(S @ np.linalg.solve(C, fa.W) - fa.W)) < 1e-4 * np.max(np.abs(fa.W))


def test_optimal_encoder_is_the_best_diagonal_gaussian_for_a_non_diagonal_posterior(numpy_backend):
    """For a decoder whose exact posterior N(m, G) has correlations, the KL-best diagonal Gaussian has the exact
    mean and variances 1 / (G^{-1})_kk (not diag G: equal only when G is diagonal). Checked against the inverse of
    exact_posterior's covariance, and by the KL's derivative in each log-variance vanishing there."""
    rng = np.random.default_rng(4)
    model = linear.LinearGaussian(rng.normal(size=6), rng.normal(size=(6, 3)), rng.uniform(0.2, 1.0, 6))
    X = _data(d=6, q=3)[:5]
    A, b, logvar = linear.optimal_encoder(model)
    post_mean, G = linear.exact_posterior(model, X)
    assert np.max(np.abs(G - np.diag(np.diag(G)))) > 0.01                     # the posterior is not diagonal
    np.testing.assert_allclose(np.exp(logvar), 1.0 / np.diag(np.linalg.inv(G)), rtol=1e-12)
    np.testing.assert_allclose(X @ A + b, post_mean, rtol=1e-10, atol=1e-12)
    h = 1e-5
    for k in range(3):
        step = np.zeros(3)
        step[k] = h
        kl_up = _kl_gauss(post_mean[0], np.diag(np.exp(logvar + step)), post_mean[0], G)
        kl_down = _kl_gauss(post_mean[0], np.diag(np.exp(logvar - step)), post_mean[0], G)
        assert abs(kl_up - kl_down) / (2 * h) < 1e-8


def test_factor_analysis_em_matches_scikit_learn(numpy_backend):
    sklearn = pytest.importorskip("sklearn.decomposition")
    X = _data(per_dimension=True)
    fa = linear.factor_analysis_em(X, 2)
    ours = float(np.mean(linear.exact_log_likelihood(fa, X)))
    theirs = sklearn.FactorAnalysis(n_components=2, tol=1e-10, max_iter=5000).fit(X)
    assert ours == pytest.approx(theirs.score(X), abs=1e-4)
    C = fa.W @ fa.W.T + np.diag(fa.psi)                                # the same fitted covariance, to 1e-4
    assert np.max(np.abs(C - theirs.get_covariance())) < 1e-4 * np.max(np.abs(C))


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


def _kl_gauss(m0, S0, m1, S1):
    """KL(N(m0, S0) || N(m1, S1)) for one pair, full covariances."""
    S1_inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (np.trace(S1_inv @ S0) + diff @ S1_inv @ diff - len(m0)
                  + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1])


@pytest.mark.parametrize("decoder_variance", ["shared", "per-dimension", 0.5])
def test_gap_decomposition_names_where_the_elbo_falls_short(backend, decoder_variance):
    """max log p - ELBO = decoder + posterior shape + encoder, each >= 0: the posterior-shape part is the mean
    KL(q*(z|x) || p(z|x)) of the best diagonal encoder (checked against the full-covariance KL), the encoder part
    the trained encoder's extra KL, and all three vanish at the closed-form optimum."""
    X = _data(per_dimension=decoder_variance == "per-dimension")
    vae = refvae.GaussianVAE(6, 2, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance, seed=3,
                             dtype="float64")
    ml = linear.ppca_ml(X, 2, noise_variance=decoder_variance if isinstance(decoder_variance, float) else None)
    best = ml if decoder_variance != "per-dimension" else linear.factor_analysis_em(X, 2)
    best = linear.LinearGaussian(*(backend.asarray(a) for a in (best.mean, best.W, best.psi)))
    Xb = backend.asarray(X)
    params = {k: backend.to_numpy(v) for k, v in vae.params.items()}
    params["decoder.mean.W"] = np.array([[1.0, 0.5, 0, 0, 0.2, 0], [0.8, 0, 0.3, 0, 0, 0.4]])  # columns not orthogonal
    vae.set_params({k: backend.asarray(v) for k, v in params.items()})
    gaps = linear.gap_decomposition(vae, Xb, best)                    # an untrained VAE: every part positive
    assert gaps["total"] == pytest.approx(gaps["decoder"] + gaps["posterior_shape"] + gaps["encoder"], abs=1e-10)
    assert gaps["total"] == pytest.approx(gaps["max_log_likelihood"] - gaps["elbo"], abs=1e-10)
    assert min(gaps["decoder"], gaps["posterior_shape"], gaps["encoder"]) > 1e-3
    model = linear.decoder_model(vae)
    host = [backend.to_numpy(a) for a in (model.mean, model.W, model.psi)]
    A, b, logvar = (backend.to_numpy(a) for a in linear.optimal_encoder(model))
    post_mean, post_cov = (backend.to_numpy(a) for a in linear.exact_posterior(model, Xb))
    kl = np.mean([_kl_gauss(X[i] @ A + b, np.diag(np.exp(logvar)), post_mean[i], post_cov) for i in range(len(X))])
    assert gaps["posterior_shape"] == pytest.approx(kl, rel=1e-8)
    assert gaps["log_likelihood"] == pytest.approx(float(np.mean(stats.multivariate_normal(
        host[0], host[1] @ host[1].T + np.diag(host[2])).logpdf(X))), rel=1e-10)
    if decoder_variance != 0.5:                                        # load_into_vae needs a learned variance
        linear.load_into_vae(vae, best)
        gaps = linear.gap_decomposition(vae, Xb, best)
        for part in ("decoder", "posterior_shape", "encoder", "total"):
            assert abs(gaps[part]) < 1e-10, part


def _analytic_elbo(vae, X):
    """The linear Gaussian VAE's ELBO per example in closed form (no sampling), from its encoder and decoder:
    E_q[log p(x|z)] = -1/2 sum_j [log 2 pi + v_j + ((x_j - m_j(mu))^2 + sum_k W_kj^2 s_k) e^{-v_j}], minus the KL."""
    mu, logvar = vae.encode(X)
    s = np.exp(logvar)
    W, b = vae.params["decoder.mean.W"], vae.params["decoder.mean.b"]
    v = vae.params["decoder.noise.logvar"] * np.ones(X.shape[1])
    rec = -0.5 * np.sum(np.log(2 * np.pi) + v + ((X - (mu @ W + b)) ** 2 + s @ (W ** 2)) * np.exp(-v), axis=1)
    kl = 0.5 * np.sum(mu ** 2 + s - 1.0 - logvar, axis=1)
    return rec - kl


@pytest.mark.parametrize("decoder_variance", ["shared", "per-dimension"])
def test_training_reaches_the_maximum_likelihood(numpy_backend, decoder_variance):
    """refvae.fit trains a linear VAE (d = 10, q = 3, 4,000 points from a known model) to the closed-form optimum:
    its ELBO within 0.005 nats per example of the maximum log-likelihood (pPCA or factor analysis), its importance-
    weighted estimate within 0.02, and its aggregate posterior N(0, I) within 0.05 per dimension."""
    rng = np.random.default_rng(0)
    d, q, n = 10, 3, 4000
    W = rng.normal(size=(d, q))
    psi = rng.uniform(0.1, 0.5, d) if decoder_variance == "per-dimension" else np.full(d, 0.3)
    X = rng.normal(size=(n, q)) @ W.T + rng.normal(size=(n, d)) * np.sqrt(psi) + rng.normal(size=d)
    solution = linear.ppca_ml(X, q) if decoder_variance == "shared" else linear.factor_analysis_em(X, q)
    max_ll = float(np.mean(linear.exact_log_likelihood(solution, X)))
    vae = refvae.GaussianVAE(d, q, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance, seed=0,
                             dtype="float64")
    opt = refvae.Adam(1e-2)
    for epoch in range(300):                                  # 1e-2, then 1e-3 and 2e-4 to settle
        opt.lr = 1e-2 if epoch < 150 else 1e-3 if epoch < 250 else 2e-4
        refvae.fit(vae, X, epochs=1, batch_size=100, optimizer=opt, seed=epoch, progress=False)
    elbo = float(np.mean(_analytic_elbo(vae, X)))
    np.testing.assert_allclose(linear.analytic_elbo(vae, X), _analytic_elbo(vae, X), rtol=1e-12)
    assert max_ll - 0.005 < elbo <= max_ll + 1e-9               # a lower bound, and tight at the optimum
    sampled = np.mean([np.mean(vae.elbo(X)) for _ in range(5)])  # the model's own one-sample ELBO agrees
    assert abs(sampled - elbo) < 0.05
    assert abs(float(np.mean(vae.log_likelihood(X, k=100, seed=1))) - max_ll) < 0.02
    aggregate = refvae.aggregate_posterior(vae, X)
    mean, var = aggregate.mean, aggregate.var
    np.testing.assert_allclose(mean, 0.0, atol=0.05)
    np.testing.assert_allclose(var, 1.0, atol=0.05)


def test_the_command_line_trains_a_linear_vae(tmp_path):
    import json
    import subprocess
    import sys

    run = [sys.executable, "-m", "refvae", "train", "vae", "--likelihood", "gaussian", "--binarize", "none",
           "--hidden", "", "--z-dim", "4", "--epochs", "1", "--train-size", "300", "--test-size", "30",
           "--iw-samples", "5", "--no-progress"]
    out = subprocess.run(run + ["--decoder-variance", "per-dimension", "--out", str(tmp_path / "fa")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    config = json.loads((tmp_path / "fa" / "metrics.json").read_text())["model"]
    assert config["decoder_variance"] == "per-dimension" and config["hidden"] == []
    bad = subprocess.run(run + ["--decoder-variance", "0", "--out", str(tmp_path / "bad")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "positive number for a fixed variance" in bad.stderr
    assert "Traceback" not in bad.stderr
