"""Optimisers acting on a model's ``params`` and ``grads`` dicts (same keys).

Sign convention, everywhere in refvae: ``grads[name]`` is d(loss)/d(params[name]) of the quantity
being *minimised*, and an optimiser *subtracts* a step along it. Parameters are updated in place.

References
----------
D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, arXiv:1412.6980 (Algorithm 1).
I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of initialization and momentum in
deep learning", ICML 2013 (classical momentum).
"""

from __future__ import annotations

import math

from .backend import get_backend

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Base class: ``step(params, grads)`` updates ``params`` in place; state round-trips through
    ``state_dict()`` / ``load_state_dict()`` (host arrays, for checkpoints)."""

    def __init__(self, lr: float):
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive finite number, got {lr!r}")
        self.lr = float(lr)
        self.t = 0                         # number of steps taken
        self.slots: dict[str, dict] = {}   # slot name -> {param name -> array}

    def _slot(self, slot, name, like):
        table = self.slots.setdefault(slot, {})
        if name not in table:
            table[name] = get_backend().xp.zeros_like(like)
        return table[name]

    def step(self, params: dict, grads: dict) -> None:
        missing = set(params) - set(grads)
        if missing:
            raise KeyError(f"grads lacks entries for parameters {sorted(missing)}")
        self.t += 1
        for name, p in params.items():
            self._update(name, p, grads[name])

    def _update(self, name, p, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict:
        B = get_backend()
        state = {"t": self.t, "lr": self.lr}
        arrays = {f"{slot}/{name}": B.to_numpy(a, copy=True) for slot, table in self.slots.items() for name, a in table.items()}
        return {"meta": state, "arrays": arrays}

    def load_state_dict(self, state: dict) -> None:
        B = get_backend()
        self.t = int(state["meta"]["t"])
        self.slots = {}
        for key, a in state["arrays"].items():
            slot, name = key.split("/", 1)
            self.slots.setdefault(slot, {})[name] = B.xp.asarray(B.asarray(a), copy=True)


class SGD(Optimizer):
    """Stochastic gradient descent with classical momentum and optional L2 weight decay.

    v <- momentum * v + (g + weight_decay * p);   p <- p - lr * v
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = self._slot("velocity", name, p)
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), keeping unnormalised moment sums and folding every constant into the step.

    The paper's moments are m <- b1 m + (1 - b1) g and v <- b2 v + (1 - b2) g^2. Kept here instead are the plain
    exponentially weighted sums, m = (1 - b1) m_sum and v = (1 - b2) v_sum:

        m_sum <- b1 m_sum + g;   v_sum <- b2 v_sum + g^2            (two passes each, not three and four)
        p <- p - lr_t m_sum / (sqrt(v_sum) + eps_t),
        s_t = sqrt((1 - b2) / (1 - b2^t)),   lr_t = lr (1 - b1) / ((1 - b1^t) s_t),   eps_t = eps / s_t

    which is the paper's p <- p - lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t),
    since sqrt(v_hat) = s_t sqrt(v_sum). The slots are named ``m_sum`` and ``v_sum`` in ``state_dict``; a state with the
    paper's ``m`` and ``v`` (older refvae checkpoints) is converted on loading.
    """

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.b1, self.b2, self.eps = float(b1), float(b2), float(eps)

    def step(self, params: dict, grads: dict) -> None:
        t = self.t + 1
        s_t = math.sqrt((1.0 - self.b2) / (1.0 - self.b2 ** t))     # sqrt(v_hat) = s_t sqrt(v_sum)
        self._lr_t = self.lr * (1.0 - self.b1) / ((1.0 - self.b1 ** t) * s_t)
        self._eps_t = self.eps / s_t
        super().step(params, grads)

    def _update(self, name, p, g):
        # m_sum <- b1 m_sum + g;  v_sum <- b2 v_sum + g^2;  p <- p - lr_t m_sum / (sqrt(v_sum) + eps_t), in place
        get_backend().adam_step(p, g, self._slot("m_sum", name, p), self._slot("v_sum", name, p),
                                self._lr_t, self.b1, self.b2, self._eps_t)

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        # the paper's moments (checkpoints written before the sums were kept): m_sum = m / (1 - b1), v_sum = v / (1 - b2)
        for old, new, beta in (("m", "m_sum", self.b1), ("v", "v_sum", self.b2)):
            if old in self.slots:
                table = self.slots.pop(old)
                self.slots[new] = {name: a / (1.0 - beta) for name, a in table.items()}
