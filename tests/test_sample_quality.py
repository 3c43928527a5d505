"""Sample-quality measures (refvae.evaluation) and the fixed feature maps (refvae.features), on known answers."""

import numpy as np
import pytest
import scipy.linalg

import refvae
from refvae import datasets
from refvae.evaluation import frechet_distance, precision_recall
from refvae.features import (CLASSIFIER_PATH, FeatureClassifier, PCAFeatures, classifier_features, load_classifier,
                             train_classifier)
from refvae.gradcheck import gradcheck
from refvae.validation import DataError


def _frechet_by_sqrtm(A, B):
    """The FID formula with scipy's general matrix square root of S_A S_B (fine for small, well-conditioned d)."""
    ma, mb = A.mean(axis=0), B.mean(axis=0)
    ca, cb = np.cov(A, rowvar=False), np.cov(B, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    return float(np.sum((ma - mb) ** 2) + np.trace(ca) + np.trace(cb) - 2.0 * np.trace(root))


def test_frechet_distance_matches_the_formula_on_the_samples(backend, host_rng):
    A = host_rng.normal(size=(400, 6)) @ host_rng.normal(size=(6, 6)) + 1.0
    B = host_rng.normal(size=(300, 6)) * np.linspace(0.5, 2.0, 6) - 0.5
    assert frechet_distance(A, B) == pytest.approx(_frechet_by_sqrtm(A, B), rel=1e-9)
    assert frechet_distance(B, A) == pytest.approx(frechet_distance(A, B), rel=1e-9)      # symmetric


def test_frechet_distance_of_two_gaussian_samples_against_the_closed_form(numpy_backend, host_rng):
    # N(m1, diag a) and N(m2, diag b) commute: d^2 = |m1 - m2|^2 + sum (sqrt a - sqrt b)^2 exactly
    d, n = 5, 200_000
    m1, m2 = np.zeros(d), np.full(d, 0.5)
    a, b = np.linspace(0.5, 3.0, d), np.linspace(2.0, 0.2, d)
    closed = float(np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))   # 1.25 + 3.0...
    A = m1 + np.sqrt(a) * host_rng.normal(size=(n, d))
    B = m2 + np.sqrt(b) * host_rng.normal(size=(n, d))
    assert frechet_distance(A, B) == pytest.approx(closed, rel=0.02)
    # a full-covariance pair: the closed form with scipy's sqrtm on the true covariances
    L1, L2 = host_rng.normal(size=(d, d)), host_rng.normal(size=(d, d))
    S1, S2 = L1 @ L1.T, L2 @ L2.T
    closed = float(np.sum((m1 - m2) ** 2) + np.trace(S1) + np.trace(S2) - 2 * np.trace(scipy.linalg.sqrtm(S1 @ S2).real))
    A, B = m1 + host_rng.normal(size=(n, d)) @ L1.T, m2 + host_rng.normal(size=(n, d)) @ L2.T
    assert frechet_distance(A, B) == pytest.approx(closed, rel=0.02)


def test_frechet_distance_is_stable_when_there_are_fewer_samples_than_dimensions(backend, host_rng):
    A = host_rng.normal(size=(60, 200))            # rank-deficient covariance (rank 59 of 200)
    shift = np.zeros(200)
    shift[:4] = 1.5
    assert frechet_distance(A, A) == pytest.approx(0.0, abs=1e-8 * np.trace(np.cov(A, rowvar=False)))
    assert frechet_distance(A, A + shift) == pytest.approx(4 * 1.5 ** 2, rel=1e-6)  # same covariance: |shift|^2
    B = host_rng.normal(size=(80, 200)) * 2.0
    d2 = frechet_distance(A, B)
    assert np.isfinite(d2) and d2 > frechet_distance(A, host_rng.normal(size=(80, 200)))


def test_precision_and_recall_on_known_answers(backend, host_rng):
    A = host_rng.normal(size=(300, 4))
    assert precision_recall(A, A) == (1.0, 1.0)                      # identical sets
    assert precision_recall(A, A + 100.0) == (0.0, 0.0)              # disjoint clusters
    # B covers two clusters, A is exactly one of them: every sample is real, half the data is missed
    B = np.concatenate([host_rng.normal(size=(300, 4)), host_rng.normal(size=(300, 4)) + 100.0])
    assert precision_recall(B[:300], B) == (1.0, 0.5)
    # a sample of the same law as one cluster: most samples realistic, recall near one half
    precision, recall = precision_recall(host_rng.normal(size=(300, 4)), B)
    assert precision > 0.9 and 0.4 < recall <= 0.5


def test_precision_recall_does_not_depend_on_the_block_size(numpy_backend, host_rng):
    A, B = host_rng.normal(size=(200, 3)), host_rng.normal(size=(250, 3)) * 1.3
    assert precision_recall(A, B, k=5) == precision_recall(A, B, k=5, max_elements=777)


def test_sample_quality_inputs_are_checked(numpy_backend, host_rng):
    A = host_rng.normal(size=(10, 3))
    with pytest.raises(DataError, match="same width"):
        frechet_distance(A, host_rng.normal(size=(10, 4)))
    with pytest.raises(DataError, match="shape \\(n, d\\)"):
        frechet_distance(A[0], A)
    with pytest.raises(DataError, match="at least 4 are needed"):
        precision_recall(A[:3], A, k=3)
    with pytest.raises(DataError, match="NaN"):
        precision_recall(np.full((10, 3), np.nan), A)
    with pytest.raises(ValueError, match="positive integer"):
        precision_recall(A, A, k=0)


# ---------------------------------------------------------------------------------------------------------------
# the feature maps
# ---------------------------------------------------------------------------------------------------------------
def test_feature_classifier_gradient_is_checked(backend):
    model = FeatureClassifier(7, 4, hidden=(6, 5), seed=1, dtype="float64")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 7)), np.array([0, 3, 1, 1, 2])
    loss, grads = model.loss_and_grads((x, y))
    assert loss == pytest.approx(model.loss(x, y), rel=1e-12)
    result = gradcheck(lambda p: model.loss(x, y), model.params, grads)
    assert result.ok, str(result)
    big = FeatureClassifier(2, 3, hidden=(2,), seed=0, dtype="float64")
    loss, grads = big.loss_and_grads((np.array([[1e4, -1e4]]), np.array([2])))
    assert np.isfinite(loss) and all(np.all(np.isfinite(refvae.get_backend().to_numpy(g))) for g in grads.values())


def test_train_classifier_learns_separable_classes(numpy_backend, host_rng):
    centres = host_rng.uniform(size=(3, 10))
    y = host_rng.integers(0, 3, size=300)
    X = np.clip(centres[y] + 0.05 * host_rng.normal(size=(300, 10)), 0, 1)
    model = train_classifier(X, y, hidden=(8,), epochs=20, batch_size=32, lr=1e-2)
    assert model.accuracy(X, y) > 0.95


def test_the_shipped_classifier_is_the_one_described(numpy_backend):
    model = load_classifier()
    meta = model.meta
    assert model.config == {"x_dim": 784, "n_classes": 10, "hidden": [128, 64]}
    (_, _), (xt, yt) = datasets.load("mnist-10k", labels=True)
    accuracy = model.accuracy(xt, yt)
    assert accuracy == pytest.approx(meta["test_accuracy"], abs=1e-6)     # the accuracy written in the file
    assert accuracy > 0.95
    assert classifier_features(xt[:7]).shape == (7, 64)
    with np.load(CLASSIFIER_PATH, allow_pickle=False) as f:                # loads without pickle
        assert "__meta__" in f.files


def test_classifier_features_agree_across_backends(host_rng):
    (x, _), _ = datasets.load("mnist-10k", labels=True)
    with refvae.use_backend("numpy"):
        ref = classifier_features(x[:20])
    with refvae.use_backend("strict") as B:
        assert np.allclose(B.to_numpy(classifier_features(x[:20])), ref, atol=1e-4)
        with pytest.raises(DataError, match="grey levels in \\[0, 1\\]"):
            classifier_features(x[:2] * 255)


def test_pca_features_keep_the_largest_variances(backend, host_rng):
    X = host_rng.normal(size=(500, 5)) * np.array([5.0, 0.1, 3.0, 0.2, 1.0])
    pca = PCAFeatures(X, dim=2)
    F = refvae.get_backend().to_numpy(pca(X))
    assert F.shape == (500, 2)
    assert np.allclose(np.abs(np.cov(F, rowvar=False)), np.diag(np.var(X, axis=0, ddof=1)[[0, 2]]), rtol=0.05, atol=0.05)
    assert 0.97 < pca.explained < 1.0


@pytest.mark.parametrize("features", ["classifier", "pca"])
def test_the_measures_rank_test_images_model_samples_and_noise(features, numpy_backend):
    """Against training images, real held-out images score better than a briefly trained VAE's samples, which
    score better than noise: the Frechet distance rises and recall falls in that order, and noise has the lowest
    precision. (The VAE's decoder means are smooth, typical images: their precision can exceed real images'.)"""
    train, test = datasets.load("mnist-10k")
    model = refvae.GaussianVAE(784, 8, hidden=(128,), seed=0)
    refvae.fit(model, train, epochs=3, batch_size=100, optimizer=refvae.Adam(1e-3), binarize="dynamic",
               progress=False)
    samples = refvae.get_backend().to_numpy(model.sample(1000, seed=0))
    noise = np.random.default_rng(0).uniform(size=(1000, 784)).astype(np.float32)
    reference = test[:1000]
    if features == "classifier":
        f = classifier_features
    else:
        f = PCAFeatures(train, dim=30)
    ref = f(train[:1000])
    fd = [frechet_distance(f(s), ref) for s in (reference, samples, noise)]
    pr = [precision_recall(f(s), ref) for s in (reference, samples, noise)]
    assert fd[0] < fd[1] < fd[2]
    assert pr[0][1] > pr[1][1] >= pr[2][1]                      # recall (the decoder means can cover nothing)
    assert min(pr[0][0], pr[1][0]) > pr[2][0]                   # precision


def test_feature_map_errors_say_what_to_do(numpy_backend, tmp_path, host_rng):
    with pytest.raises(FileNotFoundError, match="examples/feature_classifier.py"):
        load_classifier(tmp_path / "missing.npz")
    vae_file = refvae.GaussianVAE(6, 2, hidden=(4,)).save(tmp_path / "vae.npz")
    with pytest.raises(ValueError, match="is not a feature classifier .* or no path for the shipped one"):
        load_classifier(vae_file)
    with pytest.raises(ValueError, match="choose dim <= 5"):
        PCAFeatures(host_rng.normal(size=(20, 5)), dim=6)
