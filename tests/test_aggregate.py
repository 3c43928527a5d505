"""The aggregate posterior: moments by the law of total variance, the mismatch report, alignment to the
prior (function-preserving), absorbing a learned prior (ELBO-preserving), and the learned prior's gradients."""

import numpy as np
import pytest
from scipy import special

import refvae
from refvae import GaussianVAE, absorb_prior, aggregate_posterior, align_to_prior, prior_mismatch


def _model_and_data(host_rng, likelihood="bernoulli", dtype="float64", n=60, **kwargs):
    model = GaussianVAE(6, 3, hidden=(5,), likelihood=likelihood, dtype=dtype, seed=2, **kwargs)
    # spread the encoder so the aggregate is far from N(0, I): over-dispersed, shifted dimensions
    B = refvae.get_backend()
    model.enc_mu.params["W"] = model.enc_mu.params["W"] * 6.0
    model.enc_mu.params["b"] = model.enc_mu.params["b"] + B.asarray(np.array([1.0, -0.5, 0.2]), dtype=dtype)
    X = host_rng.random((n, 6)) if likelihood == "bernoulli" else host_rng.normal(size=(n, 6))
    return model, X


def test_moments_equal_direct_computation(backend, host_rng):
    model, X = _model_and_data(host_rng)
    mu, logvar = (backend.to_numpy(a) for a in model.encode(X))
    for batch_size in (7, 1000):  # several merged batches, and one
        agg = aggregate_posterior(model, X, batch_size=batch_size)
        mean, var, cov = agg.mean, agg.var, agg.cov
        assert isinstance(mean, np.ndarray) and mean.shape == (3,) and cov.shape == (3, 3)
        np.testing.assert_allclose(mean, mu.mean(axis=0), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(var, np.exp(logvar).mean(axis=0) + mu.var(axis=0), rtol=1e-12)
        np.testing.assert_allclose(cov, np.diag(np.exp(logvar).mean(axis=0)) + np.cov(mu.T, bias=True),
                                   rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(agg.posterior_var, np.exp(logvar).mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(agg.mean_spread, mu.var(axis=0), rtol=1e-11)
        assert agg.n == 60 and agg.z_dim == 3 and agg.prior == "standard"
        np.testing.assert_array_equal(agg.active, mu.var(axis=0) > 0.01)
        np.testing.assert_array_equal(backend.to_numpy(agg.mu), mu)       # the components, in the model's order
        np.testing.assert_array_equal(backend.to_numpy(agg.logvar), logvar)


def test_moments_are_sound_for_large_offsets(numpy_backend):
    """A mean of 1e4 with a spread of 1e-2: the one-pass merge keeps the variance, E[mu^2]-E[mu]^2 would not."""
    class Fixed:
        z_dim = 1
        dtype_name = "float32"

        def validate_data(self, x, name="x"):
            return x

        def encode(self, x):
            return x[:, :1], np.full((x.shape[0], 1), np.log(1e-8), np.float32)

    rng = np.random.default_rng(0)
    X = (1e4 + 1e-2 * rng.standard_normal((5000, 1))).astype(np.float32)
    var = aggregate_posterior(Fixed(), X, batch_size=512).var
    expected = np.var(X.astype(np.float64)) + 1e-8
    assert var[0] == pytest.approx(expected, rel=1e-6)


def test_mismatch_report(backend, host_rng):
    model, X = _model_and_data(host_rng)
    r = prior_mismatch(aggregate_posterior(model, X))
    # every number against the moments computed here from encode(X) (law of total variance)
    mu, logvar = (backend.to_numpy(a) for a in model.encode(X))
    mean, post_var, spread = mu.mean(axis=0), np.exp(logvar).mean(axis=0), mu.var(axis=0)
    var = post_var + spread
    cov = np.diag(post_var) + np.cov(mu.T, bias=True)
    np.testing.assert_allclose(r.mean, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.posterior_var, post_var, rtol=1e-12)
    np.testing.assert_allclose(r.mean_spread, spread, rtol=1e-11)
    np.testing.assert_allclose(r.var, var, rtol=1e-12)
    np.testing.assert_allclose(r.kl, 0.5 * (mean**2 + var - 1 - np.log(var)), rtol=1e-11)
    assert r.kl_diag == pytest.approx(r.kl.sum(), rel=1e-12)
    np.testing.assert_array_equal(r.active, spread > 0.01)
    assert r.n_active == 3   # Var[mu] is 0.10 to 0.13 in every dimension
    np.testing.assert_allclose(r.correlation, cov / np.sqrt(np.outer(var, var)), rtol=1e-10, atol=1e-13)
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0
    assert r.kl_full == pytest.approx(0.5 * (np.trace(cov) + mean @ mean - 3 - logdet), rel=1e-9)
    text = str(r)
    assert "Var[mu]" in text and "total KL" in text and r.findings
    assert r.to_dict()["n_active"] == r.n_active


def test_findings_name_collapsed_and_dispersed_dimensions(numpy_backend, host_rng):
    model, X = _model_and_data(host_rng)
    # dimension 2: mean independent of x and unit variance -> collapsed
    for key in ("W",):
        W = model.enc_mu.params[key].copy(); W[:, 2] = 0.0; model.enc_mu.params[key] = W
        W = model.enc_logvar.params[key].copy(); W[:, 2] = 0.0; model.enc_logvar.params[key] = W
    b = model.enc_mu.params["b"].copy(); b[2] = 0.0; model.enc_mu.params["b"] = b
    b = model.enc_logvar.params["b"].copy(); b[2] = 0.0; model.enc_logvar.params["b"] = b
    r = prior_mismatch(aggregate_posterior(model, X))
    text = " ".join(r.findings)
    assert "collapsed dimensions 2" in text
    assert not r.active[2] and r.kl[2] < 1e-12
    assert "over-dispersed" in text or "shifted" in text
    aligned = align_to_prior(model, aggregate_posterior(model, X))
    assert "over-dispersed" not in " ".join(prior_mismatch(aggregate_posterior(aligned, X)).findings)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("hidden", [(5,), ()], ids=["hidden", "no-hidden"])
def test_alignment_preserves_the_decoder_and_matches_the_prior(backend, likelihood, hidden, host_rng):
    model = GaussianVAE(6, 3, hidden=hidden, likelihood=likelihood, dtype="float64", seed=2)
    model.enc_mu.params["W"] = model.enc_mu.params["W"] * 6.0
    X = host_rng.random((40, 6)) if likelihood == "bernoulli" else host_rng.normal(size=(40, 6))
    eps = host_rng.normal(size=(40, 3))
    before = prior_mismatch(aggregate_posterior(model, X))
    aligned = align_to_prior(model, aggregate_posterior(model, X))
    assert aligned is not model
    # the decoder's output for the same x and eps is unchanged
    def decoded(m):
        mu, logvar = m.encode(X)
        z = mu + backend.xp.exp(0.5 * logvar) * backend.asarray(eps)
        out = m.decode(z)
        return [backend.to_numpy(o) for o in (out if isinstance(out, tuple) else (out,))]
    for a, b in zip(decoded(model), decoded(aligned)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    rec0, kl0 = (backend.to_numpy(t) for t in model.elbo_terms(X, eps))
    rec1, kl1 = (backend.to_numpy(t) for t in aligned.elbo_terms(X, eps))
    np.testing.assert_allclose(rec1, rec0, rtol=1e-12, atol=1e-12)
    agg = aggregate_posterior(aligned, X)
    mean, var = agg.mean, agg.var
    np.testing.assert_allclose(mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(var, 1.0, rtol=1e-12)
    # the KL term falls, by exactly the diagonal mismatch KL
    assert kl1.mean() <= kl0.mean()
    assert kl0.mean() - kl1.mean() == pytest.approx(before.kl_diag, rel=1e-10)


def test_align_inplace_and_bad_input(numpy_backend, host_rng):
    model, X = _model_and_data(host_rng)
    agg = aggregate_posterior(model, X)
    assert align_to_prior(model, agg, inplace=True) is model
    with pytest.raises(refvae.DataError, match="at least two examples"):
        aggregate_posterior(model, X[:1])
    with pytest.raises(refvae.DataError, match="5 columns but the model expects 6"):
        aggregate_posterior(model, X[:, :5])
    with pytest.raises(TypeError, match="Gaussian encoder"):
        align_to_prior(object(), agg)
    with pytest.raises(TypeError, match=r"prior_mismatch\(refvae.aggregate_posterior\(model, X\)"):
        prior_mismatch(model)                        # a model, not its aggregate: the error shows the call
    learned = GaussianVAE(6, 3, hidden=(5,), prior="learned")
    with pytest.raises(ValueError, match="absorb_prior"):
        prior_mismatch(aggregate_posterior(learned, X))
    with pytest.raises(TypeError, match="takes the aggregate posterior"):
        align_to_prior(model, X)
    with pytest.raises(TypeError, match="takes the aggregate posterior"):
        refvae.aggregate_kl(model, X)
    other = GaussianVAE(6, 2, hidden=(5,))
    with pytest.raises(ValueError, match="3 latent dimensions but the model has 2"):
        align_to_prior(other, agg)
    with pytest.raises(ValueError, match="3 latent dimensions but the model has 2"):
        other.sample(2, source="aggregate", aggregate=agg)


def test_learned_prior_gradients(backend, host_rng):
    model = GaussianVAE(6, 3, hidden=(5,), dtype="float64", seed=2, prior="learned")
    model.learned_prior.params["mean"] = backend.asarray(np.array([0.3, -0.2, 0.5]))
    model.learned_prior.params["logvar"] = backend.asarray(np.array([0.4, -0.3, 0.1]))
    X, eps = host_rng.random((5, 6)), host_rng.normal(size=(5, 3))
    loss, grads = model.loss_and_grads(X, eps)
    assert {"prior.mean", "prior.logvar"} <= set(grads)
    result = refvae.gradcheck(lambda p: model.loss(X, eps), model.params, grads)
    assert result.max_error <= 1e-6, str(result)


def test_absorb_prior_keeps_the_elbo(backend, host_rng):
    model = GaussianVAE(6, 3, hidden=(5,), dtype="float64", seed=2, prior="learned")
    model.learned_prior.params["mean"] = backend.asarray(np.array([0.8, -1.2, 0.5]))
    model.learned_prior.params["logvar"] = backend.asarray(np.array([1.4, -0.9, 0.3]))
    X, eps = host_rng.random((20, 6)), host_rng.normal(size=(20, 3))
    standard = absorb_prior(model)
    assert standard.prior == "standard" and not any(k.startswith("prior.") for k in standard.params)
    np.testing.assert_allclose(backend.to_numpy(standard.elbo(X, eps)), backend.to_numpy(model.elbo(X, eps)),
                               rtol=1e-12, atol=1e-12)
    # the importance-weighted estimate uses the prior density too: same seed, same numbers
    np.testing.assert_allclose(backend.to_numpy(standard.log_likelihood(X, k=50, seed=1)),
                               backend.to_numpy(model.log_likelihood(X, k=50, seed=1)), rtol=1e-10)
    with pytest.raises(ValueError, match="prior='learned'"):
        absorb_prior(standard)
    # the new model shares no memory with the old one: training it leaves the original alone
    before = {k: backend.to_numpy(v, copy=True) for k, v in model.params.items()}
    refvae.SGD(0.1).step(standard.params, {k: backend.xp.ones_like(v) for k, v in standard.params.items()})
    for k, v in model.params.items():
        np.testing.assert_array_equal(backend.to_numpy(v), before[k])


def test_learned_prior_round_trips_through_a_checkpoint(numpy_backend, tmp_path, host_rng):
    model = GaussianVAE(6, 3, hidden=(5,), prior="learned", seed=1)
    model.learned_prior.params["mean"] = np.array([0.1, 0.2, 0.3], np.float32)
    again = GaussianVAE.load(model.save(tmp_path / "m.npz"))
    assert again.prior == "learned"
    np.testing.assert_array_equal(again.params["prior.mean"], model.params["prior.mean"])


def test_sample_from_the_aggregate(backend, host_rng):
    model, X = _model_and_data(host_rng, dtype="float32")
    with pytest.raises(ValueError, match="aggregate_posterior"):
        model.sample(4, source="aggregate")
    agg = aggregate_posterior(model, X)
    mean, var = agg.mean, agg.var
    x = backend.to_numpy(model.sample(4, source="aggregate", seed=7, aggregate=agg))
    assert x.shape == (4, 6)
    # z = mean + sd * eps with the sampler's seeded noise, decoded here: the decoder's probabilities at z
    eps = backend.rng(7).normal((4, 3), "float32")
    z = backend.asarray(mean, dtype="float32") + backend.xp.sqrt(backend.asarray(var, dtype="float32")) * eps
    np.testing.assert_allclose(x, special.expit(backend.to_numpy(model.decode(z)).astype(np.float64)),
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="source must be"):
        model.sample(4, source="posterior", aggregate=agg)


@pytest.mark.parametrize("source", ["aggregate", "aggregate-full", "aggregate-mixture"])
def test_latent_draws_of_each_aggregate_source_have_its_moments(backend, host_rng, source):
    """20,000 draws z of each source: their mean is the aggregate mean; their covariance is diag(var) for
    "aggregate" and the full covariance for the other two (the mixture's covariance is exactly
    <diag sigma^2> + Cov[mu], by the law of total variance)."""
    model, X = _model_and_data(host_rng, dtype="float64")
    with pytest.raises(ValueError, match="aggregate_posterior"):
        model.sample_latent(4, source=source)
    agg = aggregate_posterior(model, X)
    mean, var, cov = agg.mean, agg.var, agg.cov
    z = backend.to_numpy(model.sample_latent(20_000, seed=3, source=source, aggregate=agg))
    assert z.shape == (20_000, 3)
    sd = np.sqrt(np.diag(cov))
    target = np.diag(var) if source == "aggregate" else cov
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=4 * sd.max() / np.sqrt(20_000) * 1.5)
    np.testing.assert_allclose(np.cov(z, rowvar=False), target, atol=0.04 * var.max())
    if source == "aggregate":
        assert abs(np.corrcoef(z, rowvar=False)[0, 1]) < 0.03
    else:
        assert np.corrcoef(z, rowvar=False)[0, 1] == pytest.approx(cov[0, 1] / (sd[0] * sd[1]), abs=0.03)


def test_the_mixture_draws_around_training_examples(backend, host_rng):
    """With tiny posterior variances the mixture reproduces the training examples' codes, each about 1/n of
    the time; the decoded samples are then the training examples' reconstructions."""
    model, X = _model_and_data(host_rng, dtype="float64", n=5)
    model.enc_logvar.params["b"] = model.enc_logvar.params["b"] - 40.0       # sigma ~ 2e-9
    agg = aggregate_posterior(model, X)
    mu = backend.to_numpy(model.encode(X)[0])
    z = backend.to_numpy(model.sample_latent(5000, seed=1, source="aggregate-mixture", aggregate=agg))
    nearest = np.argmin(((z[:, None, :] - mu[None, :, :]) ** 2).sum(axis=-1), axis=1)
    assert np.abs(z - mu[nearest]).max() < 1e-6
    assert np.all(np.abs(np.bincount(nearest, minlength=5) / 5000 - 0.2) < 0.03)
    x = backend.to_numpy(model.sample(3, seed=2, source="aggregate-mixture", aggregate=agg))
    recon = backend.to_numpy(model.reconstruct(X))
    assert all(np.abs(recon - row).max(axis=1).min() < 1e-6 for row in x)


def test_sample_uses_the_aggregate_it_is_given(backend, host_rng):
    """sample() is sample_latent() decoded with the same random stream, from the aggregate passed in; after
    align_to_prior the aligned model's aggregate is the original's in the coordinates z' = (z - m) / s: covariance
    cov / (s s^T) (the correlation matrix), components ((mu - m) / s, logvar - 2 log s)."""
    model, X = _model_and_data(host_rng, dtype="float64")
    agg = aggregate_posterior(model, X)
    for source in ("prior", "aggregate-full", "aggregate-mixture"):
        z = model.sample_latent(6, seed=4, source=source, aggregate=agg)
        np.testing.assert_allclose(backend.to_numpy(model.sample(6, seed=4, source=source, aggregate=agg)),
                                   special.expit(backend.to_numpy(model.decode(z))), rtol=1e-12)
    np.testing.assert_array_equal(backend.to_numpy(model.sample_latent(6, seed=4, source="aggregate-full",
                                                                      aggregate=agg)),
                                  backend.to_numpy(agg.draw(6, backend.rng(4), source="aggregate-full")))
    aligned = align_to_prior(model, agg)
    fresh = aggregate_posterior(aligned, X)
    m, s = agg.mean, np.sqrt(agg.var)
    np.testing.assert_allclose(fresh.cov, agg.cov / (s[:, None] * s[None, :]), atol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(fresh.mu), (backend.to_numpy(agg.mu) - m) / s, atol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(fresh.logvar), backend.to_numpy(agg.logvar) - 2 * np.log(s),
                               atol=1e-10)
    np.testing.assert_allclose(np.diag(fresh.cov), 1.0, atol=1e-10)


def test_measuring_the_aggregate_leaves_the_model_unchanged(backend, host_rng):
    """aggregate_posterior, prior_mismatch, aggregate_kl, epoch_diagnostics, align_to_prior (not in place) and
    sampling from the aggregate write nothing onto the model: vars(model) has the same keys and the same objects,
    and the parameters the same values."""
    model, X = _model_and_data(host_rng, dtype="float64")
    before = dict(vars(model))
    params = {k: backend.to_numpy(v, copy=True) for k, v in model.params.items()}
    agg = aggregate_posterior(model, X)
    prior_mismatch(agg)
    refvae.aggregate_kl(agg, samples=50)
    model.epoch_diagnostics(X)
    align_to_prior(model, agg)
    for source in ("aggregate", "aggregate-full", "aggregate-mixture"):
        model.sample(3, seed=1, source=source, aggregate=agg)
    after = vars(model)
    assert set(after) == set(before)
    assert all(after[k] is before[k] for k in before), [k for k in before if after[k] is not before[k]]
    for k, v in model.params.items():
        np.testing.assert_array_equal(backend.to_numpy(v), params[k])
    assert not any(k.startswith("aggregate") for k in after)


def _direct_mismatch(model, B, X):
    """(diagonal KL, full-covariance KL, active units) of the aggregate posterior over X, from encode(X):
    mean = <mu>, var = <sigma^2> + Var[mu] per dimension; cov = diag <sigma^2> + Cov[mu]."""
    mu, logvar = (B.to_numpy(a).astype(np.float64) for a in model.encode(X))
    mean, post_var, spread = mu.mean(axis=0), np.exp(logvar).mean(axis=0), mu.var(axis=0)
    var = post_var + spread
    kl_diag = float(np.sum(0.5 * (mean**2 + var - 1 - np.log(var))))
    cov = np.diag(post_var) + np.cov(mu.T, bias=True)
    _, logdet = np.linalg.slogdet(cov)
    kl_full = 0.5 * float(np.trace(cov) + mean @ mean - mean.size - logdet)
    return kl_diag, kl_full, int(np.sum(spread > 0.01))


def test_fit_aligns_and_records_the_mismatch(backend, host_rng):
    X = host_rng.random((64, 6)).astype(np.float32)
    model = GaussianVAE(6, 3, hidden=(8,), seed=0)
    direct = []
    history = refvae.fit(model, X, epochs=3, batch_size=16, optimizer=refvae.Adam(1e-2), align="epoch",
                         align_epochs=2, progress=False,
                         callbacks=(lambda m, h: direct.append(_direct_mismatch(m, backend, X)),))
    assert len(history["mismatch_kl"]) == 3 and len(history["active_units"]) == 3
    # each epoch's record equals the mismatch computed here from the model's encoder on the monitored rows
    # (all 64: the moments do not depend on their order)
    for epoch, (kl_diag, kl_full, active) in enumerate(direct):
        assert history["mismatch_kl"][epoch] == pytest.approx(kl_diag, rel=1e-9, abs=1e-12)
        assert history["mismatch_kl_full"][epoch] == pytest.approx(kl_full, rel=1e-9, abs=1e-12)
        assert history["active_units"][epoch] == active
    # after epochs 1 and 2 the model was aligned on all of X: the monitored subset (all 64 rows) matches exactly;
    # epoch 3 was not followed by an alignment, so its training moved the aggregate off the prior again
    assert direct[0][0] == pytest.approx(0.0, abs=1e-9) and direct[1][0] == pytest.approx(0.0, abs=1e-9)
    assert direct[2][0] > 1e-6
    # align="init": the same as aligning the fresh model first, then training without alignment
    m0 = GaussianVAE(6, 3, hidden=(8,), seed=0)
    refvae.fit(m0, X, epochs=1, batch_size=16, optimizer=refvae.Adam(1e-2), align="init", progress=False)
    fresh = GaussianVAE(6, 3, hidden=(8,), seed=0)
    m1 = align_to_prior(fresh, aggregate_posterior(fresh, X), inplace=True)
    refvae.fit(m1, X, epochs=1, batch_size=16, optimizer=refvae.Adam(1e-2), progress=False)
    unaligned = GaussianVAE(6, 3, hidden=(8,), seed=0)
    refvae.fit(unaligned, X, epochs=1, batch_size=16, optimizer=refvae.Adam(1e-2), progress=False)
    for k, v in m1.params.items():   # identical on the host; a GPU's reductions may round differently
        np.testing.assert_allclose(backend.to_numpy(m0.params[k]), backend.to_numpy(v), rtol=1e-5, atol=1e-7,
                                   err_msg=k)
    assert not np.array_equal(backend.to_numpy(m0.params["encoder.mu.b"]),
                              backend.to_numpy(unaligned.params["encoder.mu.b"]))
    with pytest.raises(ValueError, match="align must be one of"):
        refvae.fit(m0, X, epochs=1, batch_size=16, optimizer=refvae.Adam(), align="always", progress=False)


class _FixedEncoder:
    """An 'encoder' with given means and log-variances per example (the index is the data)."""

    prior = "standard"

    def __init__(self, mu, logvar):
        B = refvae.get_backend()
        self.mu, self.logvar = B.asarray(mu, dtype="float64"), B.asarray(logvar, dtype="float64")
        self.z_dim = self.mu.shape[1]

    def validate_data(self, x, name="x"):
        return refvae.get_backend().asarray(x, dtype="float64")

    def encode(self, idx):
        xp = refvae.get_backend().xp
        pick = xp.astype(idx[:, 0], xp.int64)
        return xp.take(self.mu, pick, axis=0), xp.take(self.logvar, pick, axis=0)


def test_aggregate_kl_against_quadrature(backend):
    """One latent dimension, five examples: the Monte Carlo estimate of KL(q(z) || N(0, 1)) agrees with numerical
    integration of the mixture within four standard errors, and lies above the moment-matched Gaussian's KL."""
    from scipy import integrate, stats

    mu, sd = np.array([-2.0, -0.5, 0.3, 1.0, 2.5]), np.array([0.3, 0.8, 0.5, 1.2, 0.4])
    model = _FixedEncoder(mu[:, None], 2 * np.log(sd)[:, None])
    X = np.arange(5.0)[:, None]

    def q(z):
        return np.mean(stats.norm.pdf(z, mu, sd))

    exact = integrate.quad(lambda z: q(z) * (np.log(q(z)) - stats.norm.logpdf(z)), -12, 12, limit=200)[0]
    agg = aggregate_posterior(model, X)
    est = refvae.aggregate_kl(agg, samples=20000, seed=3, batch_size=4096)
    assert est.samples == 20000 and 0 < est.standard_error < 0.02
    assert abs(est.kl - exact) < 4 * est.standard_error
    m, v = np.mean(mu), np.mean(sd ** 2) + np.var(mu)                 # the moment-matched Gaussian
    assert exact > 0.5 * (m * m + v - 1 - np.log(v)) + 0.05          # strictly above: q(z) is not Gaussian
    assert refvae.aggregate_kl(agg, samples=20000, seed=3, batch_size=7).kl == pytest.approx(est.kl, rel=1e-12)
    assert refvae.aggregate_kl(agg, samples=20000, rng=refvae.get_backend().rng(3), batch_size=4096).kl == est.kl


def test_aggregate_kl_is_zero_when_every_posterior_is_the_prior(backend):
    model = _FixedEncoder(np.zeros((4, 3)), np.zeros((4, 3)))
    est = refvae.aggregate_kl(aggregate_posterior(model, np.arange(4.0)[:, None]), samples=50)
    assert abs(est.kl) < 1e-12 and est.standard_error < 1e-12


def test_aggregate_kl_bounds_the_moment_matched_kl_of_a_vae(numpy_backend, host_rng):
    model, X = _model_and_data(host_rng, n=200)
    agg = aggregate_posterior(model, X)
    report = prior_mismatch(agg)
    est = refvae.aggregate_kl(agg, samples=4000)
    assert est.kl + 3 * est.standard_error >= report.kl_full >= report.kl_diag     # lower bounds (Hadamard)
    with pytest.raises(ValueError, match="at least 2 samples"):
        refvae.aggregate_kl(agg, samples=1)


def test_aggregate_full_draws_are_the_cholesky_map_of_the_noise(numpy_backend):
    """z = m + eps L^T exactly: with eps the identity rows, (z - m)^T (z - m) = L L^T = C for a strongly
    correlated C (drawing eps L instead gives L^T L, which differs; a seed-independent check)."""
    from refvae.vae.aggregate import AggregatePosterior

    cov = np.array([[2.0, 1.2, 0.3], [1.2, 1.5, -0.4], [0.3, -0.4, 0.8]])
    mean = np.array([0.5, -1.0, 2.0])
    agg = AggregatePosterior(mean=mean, var=np.diag(cov).copy(), cov=cov, posterior_var=np.diag(cov) / 2,
                             mean_spread=np.diag(cov) / 2, mu=np.zeros((4, 3)), logvar=np.zeros((4, 3)), n=4)

    class IdentityNoise:
        def normal(self, shape, dtype):
            return np.eye(shape[0], shape[1], dtype=dtype)

    z = agg.draw(3, IdentityNoise(), source="aggregate-full", dtype="float64")
    np.testing.assert_allclose((z - mean).T @ (z - mean), cov, atol=1e-12)
    L = np.linalg.cholesky(cov)
    assert not np.allclose(L.T @ L, cov, atol=1e-3)            # the mistaken map would be seen
