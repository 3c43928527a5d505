"""Layers: every backward pass against float64 central differences (input and parameter gradients)."""

import numpy as np
import pytest

import refvae
from refvae.layers import ACTIVATIONS, MLP, Linear, make_activation


def _check_layer(backend, layer, x_host, host_rng):
    """Check d/dx and d/dparams of L = sum(w * layer(x)) for a random fixed w."""
    xp = backend.xp
    x = backend.asarray(x_host)
    y, cache = layer.forward(x)
    w = backend.asarray(host_rng.normal(size=tuple(y.shape)))
    dx, grads = layer.backward(w, cache)
    assert set(grads) == set(layer.params)
    params = {"input": x, **layer.params}

    def loss(p):
        out, _ = layer.forward(p["input"])
        return float(xp.sum(w * out))

    result = refvae.gradcheck(loss, params, {"input": dx, **grads})
    assert result.max_error <= 1e-6, str(result)


def test_linear(backend, host_rng):
    layer = Linear(5, 3, backend.rng(1, host=True), dtype="float64")
    assert tuple(layer.params["W"].shape) == (5, 3) and tuple(layer.params["b"].shape) == (3,)
    _check_layer(backend, layer, host_rng.normal(size=(4, 5)), host_rng)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations(backend, name, host_rng):
    x = host_rng.normal(0, 2, size=(4, 6))
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink out of reach of the finite difference
    _check_layer(backend, make_activation(name), x, host_rng)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("final", [True, False])
def test_mlp(backend, activation, final, host_rng):
    mlp = MLP((5, 7, 4), activation, final_activation=final, rng=backend.rng(3, host=True), dtype="float64")
    assert sorted(mlp.params) == ["0.W", "0.b", "1.W", "1.b"]
    _check_layer(backend, mlp, host_rng.normal(size=(6, 5)), host_rng)


def test_linear_matches_its_equation(backend, host_rng):
    layer = Linear(3, 2, backend.rng(0, host=True), dtype="float64")
    x = host_rng.normal(size=(4, 3))
    y, _ = layer.forward(backend.asarray(x))
    expected = x @ backend.to_numpy(layer.params["W"]) + backend.to_numpy(layer.params["b"])
    np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-13)


def test_initialisation_is_identical_across_backends():
    with refvae.use_backend("numpy"):
        a = Linear(4, 3, refvae.get_backend().rng(7, host=True)).params["W"]
    with refvae.use_backend("strict") as B:
        b = B.to_numpy(Linear(4, 3, B.rng(7, host=True)).params["W"])
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert np.all(np.abs(a) <= 1 / np.sqrt(4))


def test_unknown_activation_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown activation 'gelu'.*relu"):
        make_activation("gelu")
    with pytest.raises(ValueError, match="positive integers"):
        MLP((4, 0, 2))
