"""The Gaussian VAE: end-to-end gradient checks with fixed noise, the loss against the textbook
formula, the importance-weighted likelihood against quadrature, and the public API's contracts."""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

import refvae
from refvae import DataError, GaussianVAE


def _data(host_rng, n, d, likelihood):
    return host_rng.random((n, d)) if likelihood == "bernoulli" else host_rng.normal(size=(n, d))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden", [(5, 4), ()], ids=["two-hidden", "no-hidden"])
def test_loss_gradient_matches_finite_differences(backend, likelihood, activation, hidden, host_rng):
    model = GaussianVAE(6, 3, hidden=hidden, likelihood=likelihood, activation=activation, seed=1, dtype="float64")
    x = _data(host_rng, 5, 6, likelihood)
    eps = host_rng.normal(size=(5, 3))
    loss, grads = model.loss_and_grads(x, eps)
    assert set(grads) == set(model.params)
    assert isinstance(loss, float)
    result = refvae.gradcheck(lambda p: model.loss(x, eps), model.params, grads)
    assert result.max_error <= 1e-6, str(result)


def _textbook_negative_elbo(model, B, x, eps):
    """-ELBO per example from encode/decode outputs, on the host, with SciPy's densities."""
    mu, logvar = (B.to_numpy(a) for a in model.encode(x))
    z = mu + np.exp(logvar / 2) * eps
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar, axis=1)
    if model.likelihood == "bernoulli":
        p = special.expit(B.to_numpy(model.decode(z)))
        log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    else:
        mean, lv = (B.to_numpy(a) for a in model.decode(z))
        log_px = stats.norm.logpdf(x, mean, np.exp(lv / 2)).sum(axis=1)
    return kl - log_px


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_loss_equals_textbook_negative_elbo(backend, likelihood, host_rng):
    model = GaussianVAE(8, 2, hidden=(6,), likelihood=likelihood, seed=3, dtype="float64")
    x = _data(host_rng, 7, 8, likelihood)
    eps = host_rng.normal(size=(7, 2))
    expected = _textbook_negative_elbo(model, backend, x, eps)
    loss, _ = model.loss_and_grads(x, eps)
    assert loss == pytest.approx(expected.mean(), rel=1e-12)
    np.testing.assert_allclose(-backend.to_numpy(model.elbo(x, eps)), expected, rtol=1e-12)
    rec, kl = (backend.to_numpy(a) for a in model.elbo_terms(x, eps))
    np.testing.assert_allclose(kl - rec, expected, rtol=1e-12)
    assert model.last_terms["kl"] == pytest.approx(kl.mean(), rel=1e-12)


def test_backends_agree_on_loss_and_gradients(host_rng):
    x, eps = host_rng.random((4, 6)), host_rng.normal(size=(4, 3))
    results = {}
    for name in ["numpy", "strict"]:
        with refvae.use_backend(name) as B:
            model = GaussianVAE(6, 3, hidden=(5,), seed=2, dtype="float64")
            loss, grads = model.loss_and_grads(x, eps)
            results[name] = (loss, {k: B.to_numpy(v) for k, v in grads.items()})
    assert results["numpy"][0] == pytest.approx(results["strict"][0], rel=1e-13)
    for k, g in results["numpy"][1].items():
        np.testing.assert_allclose(results["strict"][1][k], g, rtol=1e-11, atol=1e-14)


def test_extreme_parameters_give_finite_loss_and_gradients(backend, host_rng):
    """Decoder logits of order 1e4 (a saturated, confidently wrong decoder) stay finite."""
    model = GaussianVAE(6, 2, hidden=(4,), seed=0, dtype="float32")
    xp = backend.xp
    model.dec_heads["logits"].params["b"] = backend.asarray(np.array([1e4, -1e4] * 3), dtype="float32")
    x = np.array([[0, 1] * 3] * 3, dtype=np.float32)  # every pixel predicted wrongly
    loss, grads = model.loss_and_grads(x)
    assert math.isfinite(loss) and loss > 5e4
    for g in grads.values():
        assert bool(xp.all(xp.isfinite(g)))


def test_log_likelihood_matches_quadrature_for_one_latent(numpy_backend, host_rng):
    """With z_dim = 1, log p(x) = log int p(x|z) p(z) dz is a 1-D integral: the IW estimate must agree."""
    model = GaussianVAE(5, 1, hidden=(4,), seed=4, dtype="float64")
    x = (host_rng.random((3, 5)) < 0.5).astype(np.float64)

    def log_joint(z, xi):
        logits = model.decode(np.array([[z]]))
        return float(refvae.numerics.bernoulli_log_prob(xi[None], logits)[0]) + stats.norm.logpdf(z)

    exact = []
    for xi in x:
        peak = max(np.linspace(-8, 8, 161), key=lambda z: log_joint(z, xi))
        shift = log_joint(peak, xi)
        val, _ = integrate.quad(lambda z: math.exp(log_joint(z, xi) - shift), -12, 12, points=[peak], limit=200)
        exact.append(math.log(val) + shift)
    for max_rows in (8192, 7):  # one chunk, and chunks over samples
        estimate = model.log_likelihood(x, k=20000, seed=0, max_rows=max_rows)
        np.testing.assert_allclose(estimate, exact, atol=0.01)
    # The ELBO by quadrature, E_q[log p(x|z)] - KL: a lower bound on log p(x), and the mean of model.elbo.
    mu, logvar = model.encode(x)
    kl = refvae.numerics.kl_standard_normal(mu, logvar)
    for i, xi in enumerate(x):
        q = stats.norm(mu[i, 0], math.exp(logvar[i, 0] / 2))
        expected_rec, _ = integrate.quad(lambda z: q.pdf(z) * (log_joint(z, xi) - stats.norm.logpdf(z)),
                                         q.mean() - 12 * q.std(), q.mean() + 12 * q.std(), limit=200)
        elbo_exact = expected_rec - kl[i]
        assert elbo_exact < exact[i]   # a check of the two quadratures (Jensen); the code is checked next
        draws = np.array([model.elbo(x)[i] for _ in range(400)])
        assert abs(draws.mean() - elbo_exact) < 4 * draws.std() / math.sqrt(len(draws)) + 1e-9


class _NoiseTable:
    """A stand-in for the model's generator that hands out one fixed noise table, in order.

    ``log_likelihood`` draws its noise chunk by chunk, walking the (example, sample) grid in row-major order
    (whole examples per chunk, or one example's samples in consecutive chunks). Serving consecutive slices
    of one flat table makes every chunking see the same eps[i, j] for example i's sample j, whatever the
    backend's own generator does (CuPy's streams are not the same when drawn in pieces), so chunked and
    unchunked estimates must agree to rounding error, and both must equal a reference built from the table.
    """

    def __init__(self, backend, table):
        self.backend, self.flat, self.used = backend, table.reshape(-1), 0

    def normal(self, shape, dtype=None):
        size = math.prod(shape)
        assert self.used + size <= self.flat.size, "more noise drawn than k samples per example need"
        out = self.flat[self.used:self.used + size].reshape(shape)
        self.used += size
        return self.backend.asarray(out, dtype=dtype)


def _reference_log_likelihood(model, B, x, eps):
    """log (1/k) sum_j p(x, z_j) / q(z_j | x), z_j = mu + sigma eps[:, j], on the host with SciPy's densities."""
    n, k, z_dim = eps.shape
    mu, logvar = (B.to_numpy(a) for a in model.encode(x))                        # (n, z_dim)
    std = np.exp(logvar / 2)
    z = mu[:, None, :] + std[:, None, :] * eps                                  # (n, k, z_dim)
    log_q = stats.norm.logpdf(z, mu[:, None, :], std[:, None, :]).sum(axis=-1)   # (n, k)
    log_prior = stats.norm.logpdf(z).sum(axis=-1)
    out = model.decode(z.reshape(n * k, z_dim))
    if model.likelihood == "bernoulli":
        logits = B.to_numpy(out).reshape(n, k, -1)
        log_px_z = np.sum(x[:, None, :] * special.log_expit(logits)
                          + (1 - x[:, None, :]) * special.log_expit(-logits), axis=-1)
    else:
        mean, lv = (B.to_numpy(a).reshape(n, k, -1) for a in out)
        log_px_z = stats.norm.logpdf(x[:, None, :], mean, np.exp(lv / 2)).sum(axis=-1)
    return special.logsumexp(log_px_z + log_prior - log_q, axis=1) - math.log(k)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_log_likelihood_chunking_over_examples(backend, likelihood, host_rng):
    """Every chunking of the (example, sample) grid gives the unchunked estimate, and both equal a reference
    computed in the test from encode/decode with the same noise (n = 9 examples, k = 600 samples)."""
    model = GaussianVAE(6, 2, hidden=(4,), likelihood=likelihood, seed=1, dtype="float64")
    n, k = 9, 600
    x = _data(host_rng, n, 6, likelihood)
    eps = host_rng.normal(size=(n, k, 2))
    expected = _reference_log_likelihood(model, backend, x, eps)

    def estimate(k, max_rows, table):
        noise = _NoiseTable(backend, table)
        ll = backend.to_numpy(model.log_likelihood(x, k=k, max_rows=max_rows, rng=noise))
        assert noise.used == table.size          # every sample of every example drawn, exactly once
        assert ll.shape == (n,)
        return ll

    unchunked = estimate(k, 8192, eps)           # one chunk: all 9 examples x 600 samples
    np.testing.assert_allclose(unchunked, expected, rtol=1e-11, atol=1e-11)
    for max_rows in (1300,                       # 2 examples per chunk, the last chunk has 1
                     600,                        # one example per chunk
                     250,                        # one example's samples in chunks of 250, 250 and 100
                     7):                         # 85 chunks of 7 and a last one of 5
        np.testing.assert_allclose(estimate(k, max_rows, eps), unchunked, rtol=1e-11, atol=1e-11,
                                   err_msg=f"max_rows={max_rows}")
    # k = 1 (the single-sample bound log p(x|z) + log p(z) - log q(z|x)), several examples per chunk
    np.testing.assert_allclose(estimate(1, 4, eps[:, :1]), _reference_log_likelihood(model, backend, x, eps[:, :1]),
                               rtol=1e-11, atol=1e-11)


def test_public_methods_shapes_and_types(backend, host_rng):
    model = GaussianVAE(6, 3, hidden=(5,), seed=0)
    x = host_rng.random((4, 6)).astype(np.float32)
    mu, logvar = model.encode(x)
    assert backend.is_array(mu) and tuple(mu.shape) == (4, 3) and tuple(logvar.shape) == (4, 3)
    assert backend.dtype_name(mu.dtype) == "float32"
    assert tuple(model.decode(mu).shape) == (4, 6)
    for out in (model.elbo(x), model.log_likelihood(x, k=4)):
        assert backend.is_array(out) and tuple(out.shape) == (4,)
    samples = backend.to_numpy(model.sample(10))
    assert samples.shape == (10, 6) and samples.min() >= 0 and samples.max() <= 1
    binary = backend.to_numpy(model.sample(10, mean=False))
    assert set(np.unique(binary)) <= {0.0, 1.0}
    rec = model.reconstruct(backend.asarray(x))  # a backend array is accepted too
    assert tuple(rec.shape) == (4, 6)
    gauss = GaussianVAE(6, 3, hidden=(5,), likelihood="gaussian")
    mean, lv = gauss.decode(backend.asarray(np.zeros((2, 3), np.float32)))
    assert tuple(mean.shape) == (2, 6) and tuple(lv.shape) == (2, 6)


def test_params_and_config(numpy_backend):
    model = GaussianVAE(784, 20)
    shapes = {k: tuple(v.shape) for k, v in model.params.items()}
    assert shapes["encoder.0.W"] == (784, 400) and shapes["encoder.mu.W"] == (400, 20)
    assert shapes["encoder.logvar.b"] == (20,) and shapes["decoder.0.W"] == (20, 400)
    assert shapes["decoder.logits.W"] == (400, 784)
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert model.config["hidden"] == [400]


@pytest.mark.parametrize("bad, message", [
    (np.full((3, 6), np.nan), "NaN or infinite"),
    (np.full((3, 6), np.inf), "NaN or infinite"),
    (np.full((3, 6), 2.0), r"values in \[2, 2\].*\[0, 1\]"),
    (np.zeros((3, 5)), "5 columns but the model expects 6"),
    (np.zeros((0, 6)), "0 rows"),
    (np.zeros(6), r"shape \(6,\).*\(n, 6\)"),
])
def test_bad_input_is_refused_clearly(backend, bad, message):
    model = GaussianVAE(6, 2, hidden=(4,))
    with pytest.raises(DataError, match=message):
        model.loss_and_grads(bad)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="likelihood 'poisson'"):
        GaussianVAE(6, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="z_dim must be a positive integer"):
        GaussianVAE(6, 0)
    with pytest.raises(ValueError, match="unsupported dtype"):
        GaussianVAE(6, 2, dtype="float16")


def test_eps_of_the_wrong_shape(numpy_backend):
    model = GaussianVAE(6, 2, hidden=(4,))
    with pytest.raises(DataError, match="eps has 2 rows but x has 3"):
        model.loss_and_grads(np.zeros((3, 6)), eps=np.zeros((2, 2)))


def test_complex_and_masked_data_are_refused(numpy_backend):
    model = GaussianVAE(4, 2, hidden=(3,))
    with pytest.raises(refvae.DataError, match="complex numbers"):
        model.loss(np.ones((2, 4), dtype=np.complex128) * 0.5)
    masked = np.ma.masked_array(np.full((2, 4), 0.5), mask=[[0, 1, 0, 0], [0, 0, 0, 0]])
    with pytest.raises(refvae.DataError, match="masked array.*mask"):
        model.loss(masked)


# ------------------------------------------------------------------------------------------------------
# The Gaussian decoder's variance: amortised, per dimension (factor analysis), shared (pPCA) or fixed
# ------------------------------------------------------------------------------------------------------
DECODER_VARIANCES = ["per-dimension", "shared", 0.3]


@pytest.mark.parametrize("decoder_variance", DECODER_VARIANCES, ids=str)
@pytest.mark.parametrize("hidden", [(5,), ()], ids=["one-hidden", "linear"])
def test_decoder_variance_gradients_match_finite_differences(backend, decoder_variance, hidden, host_rng):
    model = GaussianVAE(6, 3, hidden=hidden, likelihood="gaussian", decoder_variance=decoder_variance, seed=2,
                        dtype="float64")
    x, eps = host_rng.normal(size=(5, 6)), host_rng.normal(size=(5, 3))
    for name, p in model.params.items():                    # move the variance off its initial value 1
        if name == "decoder.noise.logvar":
            p[...] = backend.asarray(host_rng.normal(size=tuple(p.shape)) * 0.5)
    loss, grads = model.loss_and_grads(x, eps)
    assert set(grads) == set(model.params)
    result = refvae.gradcheck(lambda p: model.loss(x, eps), model.params, grads)
    assert result.max_error <= 1e-6, str(result)


@pytest.mark.parametrize("decoder_variance", DECODER_VARIANCES, ids=str)
def test_decoder_variance_enters_the_likelihood_as_documented(numpy_backend, decoder_variance, host_rng):
    """-log p(x|z) against SciPy with the variance the option describes, and the parameters it adds."""
    model = GaussianVAE(4, 2, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance, seed=0,
                        dtype="float64")
    shapes = {"per-dimension": (4,), "shared": (1,)}
    if decoder_variance in shapes:
        assert model.params["decoder.noise.logvar"].shape == shapes[decoder_variance]
        model.params["decoder.noise.logvar"][...] = host_rng.normal(size=shapes[decoder_variance])
        var = np.exp(model.params["decoder.noise.logvar"]) * np.ones(4)
    else:
        assert not any("logvar" in k and k.startswith("decoder") for k in model.params)
        var = np.full(4, decoder_variance)
    x, eps = host_rng.normal(size=(3, 4)), host_rng.normal(size=(3, 2))
    mu, logvar = model.encode(x)
    z = mu + np.exp(logvar / 2) * eps
    mean = model.decode(z)[0]
    rec_expected = -stats.norm.logpdf(x, mean, np.sqrt(var)).sum(axis=1)
    rec, _ = model.elbo_terms(x, eps)
    np.testing.assert_allclose(-rec, rec_expected, rtol=1e-12)


def test_decoder_variance_round_trips_and_is_checked(numpy_backend, tmp_path, host_rng):
    model = GaussianVAE(4, 2, hidden=(), likelihood="gaussian", decoder_variance="shared", seed=0)
    model.params["decoder.noise.logvar"][...] = -1.5
    back = refvae.load(model.save(tmp_path / "m.npz"))
    assert back.decoder_variance == "shared" and back.config["decoder_variance"] == "shared"
    np.testing.assert_array_equal(back.params["decoder.noise.logvar"], model.params["decoder.noise.logvar"])
    assert GaussianVAE(4, 2, likelihood="gaussian", decoder_variance=0.25).config["decoder_variance"] == 0.25
    for bad, match in [("diagonal", "unknown decoder_variance"), (0.0, "positive float"), (-1.0, "positive float"),
                       (float("nan"), "positive float")]:
        with pytest.raises(ValueError, match=match):
            GaussianVAE(4, 2, likelihood="gaussian", decoder_variance=bad)
    with pytest.raises(ValueError, match="needs likelihood='gaussian'"):
        GaussianVAE(4, 2, likelihood="bernoulli", decoder_variance="shared")


@pytest.mark.parametrize("decoder_variance", DECODER_VARIANCES, ids=str)
def test_alignment_keeps_a_decoder_variance_models_elbo_terms(numpy_backend, decoder_variance, host_rng):
    """align_to_prior changes only the KL term, whatever the decoder's variance."""
    model = GaussianVAE(5, 2, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance, seed=3,
                        dtype="float64")
    X = host_rng.normal(size=(50, 5)) * 2.0 + 1.0
    eps = host_rng.normal(size=(50, 2))
    rec0, _ = model.elbo_terms(X, eps)
    aligned = refvae.align_to_prior(model, refvae.aggregate_posterior(model, X))
    rec1, _ = aligned.elbo_terms(X, eps)
    np.testing.assert_allclose(rec1, rec0, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("decoder_variance", DECODER_VARIANCES, ids=str)
def test_absorb_prior_keeps_a_decoder_variance_models_elbo(numpy_backend, decoder_variance, host_rng):
    """absorb_prior folds a learned prior into the encoder and decoder: the ELBO per example is unchanged and the
    decoder's variance (its own parameter, or the fixed value) travels with the model."""
    model = GaussianVAE(5, 2, hidden=(), likelihood="gaussian", decoder_variance=decoder_variance, seed=3,
                        dtype="float64", prior="learned")
    model.learned_prior.params["mean"] = np.array([0.7, -1.1])
    model.learned_prior.params["logvar"] = np.array([1.2, -0.6])
    if "decoder.noise.logvar" in model.params:
        model.params["decoder.noise.logvar"][...] = host_rng.normal(size=model.params["decoder.noise.logvar"].shape)
    X, eps = host_rng.normal(size=(30, 5)), host_rng.normal(size=(30, 2))
    standard = refvae.absorb_prior(model)
    assert standard.prior == "standard" and standard.decoder_variance == decoder_variance
    np.testing.assert_allclose(standard.elbo(X, eps), model.elbo(X, eps), rtol=1e-12, atol=1e-12)
    if decoder_variance != 0.3:
        np.testing.assert_array_equal(standard.params["decoder.noise.logvar"], model.params["decoder.noise.logvar"])


# ------------------------------------------------------------------------------------------------------
# The mathematics as pure functions (refvae.vae.elbo): the model calls them, and nothing else
# ------------------------------------------------------------------------------------------------------
ELBO_CONFIGS = [
    {},                                                                        # GaussianVAE's defaults
    {"likelihood": "gaussian"},
    {"activation": "tanh", "prior": "learned"},
    {"likelihood": "gaussian", "prior": "learned", "activation": "softplus"},
    {"likelihood": "gaussian", "decoder_variance": "per-dimension"},
    {"likelihood": "gaussian", "decoder_variance": "shared"},
    {"likelihood": "gaussian", "decoder_variance": 0.3},
    {"fast": False},
]


def _perturbed_model(backend, host_rng, hidden=(5, 4), **config):
    model = GaussianVAE(6, 3, hidden=hidden, seed=4, dtype="float64", **config)
    model.set_params({k: backend.to_numpy(v) + 0.3 * host_rng.normal(size=tuple(v.shape))
                      for k, v in model.params.items()})              # off the initial values (prior, noise: 0)
    return model


@pytest.mark.parametrize("config", ELBO_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "defaults")
@pytest.mark.parametrize("hidden", [(5, 4), ()], ids=["two-hidden", "no-hidden"])
def test_elbo_functions_return_what_the_model_returns(backend, config, hidden, host_rng):
    """elbo.negative_elbo_and_grads(model.params, x, eps, **config) is model.loss_and_grads(x, eps) (same loss, same
    grads) to 1e-12 in float64; with no config for a default model. Likewise encode, decode, negative_elbo and
    iw_log_likelihood against the methods that call them."""
    from refvae.vae import elbo

    model = _perturbed_model(backend, host_rng, hidden=hidden, **config)
    likelihood = config.get("likelihood", "bernoulli")
    x, eps = _data(host_rng, 7, 6, likelihood), host_rng.normal(size=(7, 3))
    loss, grads = model.loss_and_grads(x, eps)
    xb, epsb = backend.asarray(x, dtype="float64"), backend.asarray(eps, dtype="float64")
    loss_f, grads_f = elbo.negative_elbo_and_grads(model.params, xb, epsb, **config)
    assert isinstance(loss_f, float) and loss_f == pytest.approx(loss, rel=1e-12, abs=1e-12)
    assert set(grads_f) == set(grads) == set(model.params)
    for k, g in grads.items():
        np.testing.assert_allclose(backend.to_numpy(grads_f[k]), backend.to_numpy(g), rtol=1e-12, atol=1e-12, err_msg=k)
    rec, kl = elbo.negative_elbo(model.params, xb, epsb, **config)
    rec_m, kl_m = model.elbo_terms(x, eps)
    np.testing.assert_allclose(backend.to_numpy(rec), -backend.to_numpy(rec_m), rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(kl), backend.to_numpy(kl_m), rtol=1e-12)
    mu, logvar, _ = elbo.encode(model.params, xb, activation=config.get("activation", "relu"))
    for a, b in zip((mu, logvar), model.encode(x)):
        np.testing.assert_allclose(backend.to_numpy(a), backend.to_numpy(b), rtol=1e-12)
    outs, _ = elbo.decode(model.params, mu, **config)
    decoded = model.decode(mu)
    for a, b in zip([outs["logits"]] if likelihood == "bernoulli" else [outs["mean"], outs["logvar"]],
                    decoded if isinstance(decoded, tuple) else (decoded,)):
        np.testing.assert_allclose(backend.to_numpy(a), backend.to_numpy(b), rtol=1e-12)
    ll = elbo.iw_log_likelihood(model.params, xb, 30, backend.rng(9), max_rows=40, **config)
    expected = model.log_likelihood(x, k=30, seed=9, max_rows=40)
    np.testing.assert_allclose(backend.to_numpy(ll), backend.to_numpy(expected), rtol=1e-12)


def test_elbo_functions_refuse_an_unknown_keyword(numpy_backend):
    from refvae.vae import elbo

    model = GaussianVAE(6, 3, hidden=(5,), dtype="float64")
    x, eps = np.full((2, 6), 0.5), np.zeros((2, 3))
    for call in (lambda: elbo.encode(model.params, x, activaton="tanh"),
                 lambda: elbo.decode(model.params, eps, likelyhood="gaussian"),
                 lambda: elbo.negative_elbo(model.params, x, eps, prior_="learned")):
        with pytest.raises(TypeError, match="unknown configuration keyword|unexpected keyword"):
            call()
    assert set(elbo.CONFIG) == set(model.elbo_config)
    assert elbo.CONFIG == GaussianVAE(6, 3).elbo_config             # the defaults are GaussianVAE's


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_fast_and_textbook_forms_agree(backend, likelihood, host_rng):
    """GaussianVAE(fast=False) runs the textbook forms (the two Bernoulli functions; the IW blocks one after the
    other): the same loss, gradients and IW estimate as the fast forms, float64 to 1e-12."""
    fast, textbook = (GaussianVAE(6, 3, hidden=(5,), likelihood=likelihood, seed=2, dtype="float64", fast=f)
                      for f in (True, False))
    assert textbook.config["fast"] is False and "fast" not in fast.config
    textbook.set_params(fast.params)
    x, eps = _data(host_rng, 9, 6, likelihood), host_rng.normal(size=(9, 3))
    loss_f, grads_f = fast.loss_and_grads(x, eps)
    loss_t, grads_t = textbook.loss_and_grads(x, eps)
    assert loss_t == pytest.approx(loss_f, rel=1e-12)
    for k in grads_f:
        np.testing.assert_allclose(backend.to_numpy(grads_t[k]), backend.to_numpy(grads_f[k]), rtol=1e-12, atol=1e-15,
                                   err_msg=k)
    x2 = x[:2]                                   # 2 examples x 600 samples: three blocks of 256 samples per chunk
    np.testing.assert_allclose(backend.to_numpy(textbook.log_likelihood(x2, k=600, seed=1)),
                               backend.to_numpy(fast.log_likelihood(x2, k=600, seed=1)), rtol=1e-12)


def test_the_fast_choice_is_the_one_that_runs(numpy_backend, host_rng, monkeypatch):
    """fast=True calls the fused Bernoulli term and map_blocks; fast=False calls neither."""
    from refvae.vae import elbo

    calls = []

    def spy(name, original):
        def wrapped(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(elbo, "bernoulli_nll_with_grad", spy("fused", elbo.bernoulli_nll_with_grad))
    monkeypatch.setattr(elbo, "map_blocks", spy("map_blocks", elbo.map_blocks))
    x = host_rng.random((3, 6))
    for fast in (False, True):
        model = GaussianVAE(6, 2, hidden=(4,), dtype="float64", fast=fast)
        model.loss_and_grads(x)
        model.log_likelihood(x, k=4, seed=0)
        assert calls == ([] if not fast else ["fused", "map_blocks"])


def test_every_draw_takes_its_generator(backend, host_rng):
    """loss_and_grads, loss, elbo, elbo_terms, log_likelihood, sample and sample_latent draw from ``rng`` when it is
    given (the same numbers as with that noise passed in) and leave the model's own generator untouched."""
    model = GaussianVAE(6, 3, hidden=(5,), seed=3, dtype="float64")
    own = model.rng
    x = host_rng.random((4, 6))
    eps = backend.rng(11).normal((4, 3), "float64")
    loss, grads = model.loss_and_grads(x, rng=backend.rng(11))
    loss_eps, grads_eps = model.loss_and_grads(x, eps)
    assert loss == loss_eps and all(np.array_equal(backend.to_numpy(grads[k]), backend.to_numpy(grads_eps[k]))
                                    for k in grads)
    assert model.loss(x, rng=backend.rng(11)) == model.loss(x, eps)
    np.testing.assert_array_equal(backend.to_numpy(model.elbo(x, rng=backend.rng(11))),
                                  backend.to_numpy(model.elbo(x, eps)))
    np.testing.assert_array_equal(backend.to_numpy(model.elbo_terms(x, rng=backend.rng(11))[1]),
                                  backend.to_numpy(model.elbo_terms(x, eps)[1]))
    np.testing.assert_array_equal(backend.to_numpy(model.log_likelihood(x, k=5, rng=backend.rng(4))),
                                  backend.to_numpy(model.log_likelihood(x, k=5, seed=4)))
    np.testing.assert_array_equal(backend.to_numpy(model.sample(3, rng=backend.rng(4), mean=False)),
                                  backend.to_numpy(model.sample(3, seed=4, mean=False)))
    np.testing.assert_array_equal(backend.to_numpy(model.sample_latent(3, rng=backend.rng(4))),
                                  backend.to_numpy(backend.rng(4).normal((3, 3), "float64")))
    assert model.rng is own
    np.testing.assert_array_equal(backend.to_numpy(own.normal((5,), "float64")),       # not drawn from so far
                                  backend.to_numpy(backend.rng(3).normal((5,), "float64")))
    with pytest.raises(ValueError, match="rng or seed, not both"):
        model.sample(2, seed=1, rng=backend.rng(1))


def test_evaluate_vae_passes_its_generators(numpy_backend, host_rng):
    """evaluate_vae draws from generators it passes in: the model's own is neither replaced nor drawn from, and the
    numbers are those of elbo_terms and log_likelihood with the documented seeds."""
    model = GaussianVAE(6, 2, hidden=(4,), seed=5)
    own = model.rng
    X = host_rng.random((12, 6)).astype(np.float32)
    result = refvae.vae.evaluate_vae(model, X, k=7, elbo_draws=3, seed=2, binarize=False)
    assert model.rng is own
    np.testing.assert_array_equal(own.normal((4,), "float32"), numpy_backend.rng(5).normal((4,), "float32"))
    elbo_rng = numpy_backend.rng((2, 1))
    draws = [model.elbo_terms(X, rng=elbo_rng) for _ in range(3)]
    assert result["kl"] == pytest.approx(np.mean([float(np.mean(kl)) for _, kl in draws]), rel=1e-12)
    ll = model.log_likelihood(X, k=7, rng=numpy_backend.rng((2, 2)))
    assert result["log_likelihood"] == pytest.approx(float(np.mean(ll)), rel=1e-12)


# ------------------------------------------------------------------------------------------------------
# The IWAE objective (Burda et al. 2016): -L_k and its hand-written gradient
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("likelihood, decoder_variance", [("bernoulli", "amortised"), ("gaussian", "amortised"),
                                                          ("gaussian", 0.5)], ids=["bernoulli", "gaussian", "fixed"])
@pytest.mark.parametrize("k", [1, 4])
def test_iwae_gradient_matches_finite_differences(backend, likelihood, decoder_variance, k, host_rng):
    model = GaussianVAE(6, 3, hidden=(5, 4), likelihood=likelihood, activation="tanh", seed=1, dtype="float64",
                        decoder_variance=decoder_variance, objective="iwae", iwae_k=k)
    x = _data(host_rng, 5, 6, likelihood)
    eps = host_rng.normal(size=(5, k, 3))
    loss, grads = model.loss_and_grads(x, eps)
    assert set(grads) == set(model.params) and isinstance(loss, float)
    result = refvae.gradcheck(lambda p: model.loss_and_grads(x, eps)[0], model.params, grads)
    assert result.max_error <= 1e-6, str(result)


class _FixedNoise:
    """A generator whose normal() returns given arrays in turn (to feed iw_log_likelihood the same eps)."""

    def __init__(self, backend, eps):
        self.backend, self.eps = backend, eps

    def normal(self, shape, dtype):
        assert tuple(shape) == self.eps.shape
        return self.backend.asarray(self.eps, dtype=dtype)


def test_iwae_loss_is_minus_the_iw_estimate_at_the_same_noise(backend, host_rng):
    """-L_k at fixed eps equals minus the mean importance-weighted log-likelihood (elbo.iw_log_likelihood, an
    independent code path) at the same eps; for k = 1 it is -ELBO with the KL term sampled."""
    model = GaussianVAE(6, 3, hidden=(5,), seed=2, dtype="float64", objective="iwae", iwae_k=7)
    x = backend.asarray(host_rng.random((4, 6)))
    eps = host_rng.normal(size=(4, 7, 3))
    loss, _ = model.loss_and_grads(x, eps)
    ll = model.log_likelihood(x, k=7, rng=_FixedNoise(backend, eps))
    assert loss == pytest.approx(-float(np.mean(backend.to_numpy(ll))), rel=1e-12)


def test_iwae_k1_is_the_elbo_with_a_sampled_kl(backend, host_rng):
    model = GaussianVAE(6, 3, hidden=(5,), seed=3, dtype="float64", objective="iwae", iwae_k=1)
    x = backend.asarray(host_rng.random((4, 6)))
    eps = host_rng.normal(size=(4, 1, 3))
    mu, logvar = (backend.to_numpy(a) for a in model.encode(x))
    z = mu + np.exp(logvar / 2) * eps[:, 0]
    rec = -backend.to_numpy(model.elbo(x, eps[:, 0])) - backend.to_numpy(model.elbo_terms(x, eps[:, 0])[1])
    log_q = stats.norm.logpdf(z, mu, np.exp(logvar / 2)).sum(axis=1)
    log_p = stats.norm.logpdf(z).sum(axis=1)
    assert model.loss_and_grads(x, eps)[0] == pytest.approx(float(np.mean(rec + log_q - log_p)), rel=1e-10)


def test_iwae_objective_bad_settings(numpy_backend):
    with pytest.raises(ValueError, match="objective"):
        GaussianVAE(6, 3, objective="iwea")
    with pytest.raises(ValueError, match="prior='standard'"):
        GaussianVAE(6, 3, objective="iwae", prior="learned")
    with pytest.raises(ValueError, match="iwae_k"):
        GaussianVAE(6, 3, objective="iwae", iwae_k=0)
    model = GaussianVAE(6, 3, objective="iwae", iwae_k=3)
    with pytest.raises(DataError, match=r"\(batch, iwae_k, z_dim\)"):
        model.loss_and_grads(np.full((2, 6), 0.5), np.zeros((2, 2, 3)))
    assert model.config["objective"] == "iwae" and model.config["iwae_k"] == 3
