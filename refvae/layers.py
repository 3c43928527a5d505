"""Layers with hand-written backward passes.

Every layer has the same two methods::

    y, cache   = layer.forward(x)          # cache: what backward needs, nothing more
    dx, grads  = layer.backward(dy, cache) # dx = dL/dx,  grads[name] = dL/d params[name]

``layer.params`` and ``grads`` share their keys, so one optimiser and one gradient checker serve
every layer.  A layer's parameters are the arrays in ``layer.params``; optimisers update them in
place, so a model's flat view of them (``model.params``) stays valid.

Shapes: ``x`` is ``(batch, in_dim)``, ``y`` is ``(batch, out_dim)``.
"""

from __future__ import annotations

import math

from .backend import get_backend
from .numerics import namespace, sigmoid, softplus

__all__ = ["ACTIVATIONS", "MLP", "Linear", "affine", "affine_backward", "ParameterSlots", "ReLU", "Sigmoid", "Softplus", "Tanh", "make_activation"]


class Linear:
    """Affine map ``y = x @ W + b``, ``W`` of shape ``(in_dim, out_dim)``, ``b`` of shape ``(out_dim,)``.

    Initialisation: W and b uniform in [-1/sqrt(in_dim), 1/sqrt(in_dim)] (the default of
    PyTorch's ``nn.Linear``, so the two are compared on equal terms). The numbers are drawn on the
    host (``rng(seed, host=True)``), so a seed gives the same layer on every backend.
    """

    def __init__(self, in_dim: int, out_dim: int, rng=None, dtype="float32"):
        B = get_backend()
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        rng = rng if rng is not None else B.rng(0, host=True)
        bound = 1.0 / math.sqrt(self.in_dim)
        self.params = {
            "W": (2.0 * rng.uniform((self.in_dim, self.out_dim), dtype) - 1.0) * bound,
            "b": (2.0 * rng.uniform((self.out_dim,), dtype) - 1.0) * bound,
        }

    def forward(self, x):
        return affine(x, self.params["W"], self.params["b"]), x

    def backward(self, dy, cache, need_dx: bool = True):
        """dL/dx = dy W^T,  dL/dW = x^T dy,  dL/db = sum_batch dy.  ``need_dx=False`` skips dx."""
        return affine_backward(dy, cache, self.params["W"], need_dx)


def affine(x, W, b):
    """$y = x W + b$: x (batch, in), W (in, out), b (out,) -> (batch, out). The pure function of :class:`Linear`
    (and of the VAE's layers in ``refvae.vae.elbo``)."""
    y = x @ W      # (batch, in) @ (in, out) -> (batch, out)
    y += b         # in place: no second (batch, out) array
    return y


def affine_backward(dy, x, W, need_dx: bool = True):
    r"""From $\delta y = \partial L / \partial y$ (batch, out): (dx, {"W": dW, "b": db}) with
    $\partial L / \partial W = x^\top \delta y$, $\partial L / \partial b = \sum_{\text{batch}} \delta y$ and
    $\partial L / \partial x = \delta y\, W^\top$ (None with ``need_dx=False``)."""
    grads = {"W": x.T @ dy, "b": namespace(dy).sum(dy, axis=0)}   # (in, batch) @ (batch, out) -> (in, out)
    dx = dy @ W.T if need_dx else None                            # (batch, out) @ (out, in) -> (batch, in)
    return dx, grads


class _Activation:
    """An element-wise function without parameters."""

    params: dict = {}

    def __init__(self):
        self.params = {}


class ReLU(_Activation):
    """y = max(x, 0);  dy/dx = 1[x > 0]  (0 at the kink)."""

    def forward(self, x):
        y = namespace(x).maximum(x, 0.0)
        return y, y

    def backward(self, dy, cache, need_dx: bool = True):
        y = cache
        xp = namespace(dy)
        # dy * 1[y > 0]: a product with the 0/1 mask (faster than ``where``: docs/benchmarks.md)
        return dy * xp.astype(y > 0, dy.dtype), {}


class Tanh(_Activation):
    """y = tanh(x);  dy/dx = 1 - y^2."""

    def forward(self, x):
        y = namespace(x).tanh(x)
        return y, y

    def backward(self, dy, cache, need_dx: bool = True):
        y = cache
        return dy * (1.0 - y * y), {}


class Sigmoid(_Activation):
    """y = sigmoid(x);  dy/dx = y (1 - y)."""

    def forward(self, x):
        y = sigmoid(x)
        return y, y

    def backward(self, dy, cache, need_dx: bool = True):
        y = cache
        return dy * y * (1.0 - y), {}


class Softplus(_Activation):
    """y = log(1 + e^x);  dy/dx = sigmoid(x)."""

    def forward(self, x):
        return softplus(x), x

    def backward(self, dy, cache, need_dx: bool = True):
        x = cache
        return dy * sigmoid(x), {}


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "softplus": Softplus}


def make_activation(name: str) -> _Activation:
    """An activation layer by name: one of ``ACTIVATIONS``."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}") from None


class MLP:
    """Linear layers with an activation after each: ``sizes = (in, h1, ..., out)``.

    ``final_activation=False`` leaves the last Linear without an activation.
    Parameters are named ``"0.W", "0.b", "1.W", ...`` (index of the Linear layer).
    An MLP with ``sizes = (d,)`` is the identity.
    """

    def __init__(self, sizes, activation="relu", final_activation=True, rng=None, dtype="float32"):
        self.sizes = tuple(int(s) for s in sizes)
        if len(self.sizes) < 1 or any(s < 1 for s in self.sizes):
            raise ValueError(f"MLP sizes must be positive integers, got {sizes!r}")
        self.linears = [Linear(a, b, rng, dtype) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        self.activations = [make_activation(activation) for _ in self.linears]
        if not final_activation and self.linears:
            self.activations[-1] = None

    @property
    def params(self) -> dict:
        return {f"{i}.{k}": v for i, lin in enumerate(self.linears) for k, v in lin.params.items()}

    def forward(self, x):
        caches = []
        for lin, act in zip(self.linears, self.activations):
            x, c_lin = lin.forward(x)
            c_act = None
            if act is not None:
                x, c_act = act.forward(x)
            caches.append((c_lin, c_act))
        return x, caches

    def backward(self, dy, caches, need_dx: bool = True):
        grads = {}
        for i in reversed(range(len(self.linears))):
            c_lin, c_act = caches[i]
            act = self.activations[i]
            if act is not None:
                dy, _ = act.backward(dy, c_act)
            dy, g = self.linears[i].backward(dy, c_lin, need_dx=need_dx or i > 0)
            grads.update({f"{i}.{k}": v for k, v in g.items()})
        return dy, grads


class ParameterSlots:
    """A model's flat ``params`` view over the parameter dicts of its layers, and ``set_params``.

    The model defines ``_slots()``, yielding ``(flat name, owning dict, key)`` for every parameter array, and has
    ``xp``, ``backend`` and ``dtype_name``. Optimisers update the arrays of ``params`` in place, so the view stays
    valid; ``set_params`` replaces them (by copies) in their owning dicts.
    """

    @property
    def params(self) -> dict:
        """Name -> parameter array (the arrays themselves: optimisers update them in place)."""
        return {name: owner[key] for name, owner, key in self._slots()}

    def set_param_arrays(self, new: dict) -> None:
        """Replace every parameter by a copy of the array of the same name in ``new`` (same names and shapes).

        Copies, so that the model never shares memory with the caller's arrays (optimisers update in place).
        ``set_params(new)`` is the same (a model that is also a :class:`refvae.estimator.Estimator` gives
        ``set_params`` scikit-learn's meaning for keywords, and this one for a dict).
        """
        mine = self.params
        missing, extra = sorted(set(mine) - set(new)), sorted(set(new) - set(mine))
        if missing or extra:
            raise ValueError(f"parameters do not match this {type(self).__name__}: missing {missing}, "
                             f"unexpected {extra}")
        wrong = [f"{k}: {tuple(new[k].shape)} != {tuple(mine[k].shape)}" for k in mine
                 if tuple(new[k].shape) != tuple(mine[k].shape)]
        if wrong:
            raise ValueError("parameter shapes do not match this model's architecture: " + "; ".join(wrong))
        for name, owner, key in self._slots():
            owner[key] = self.xp.asarray(self.backend.asarray(new[name], dtype=self.dtype_name), copy=True)

    set_params = set_param_arrays
