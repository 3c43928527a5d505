r"""Optimisers acting on a model's ``params`` and ``grads`` dicts (same keys).

Sign convention, everywhere in refvae: ``grads[name]`` is $\partial \text{loss} / \partial \text{params[name]}$ of the
quantity being *minimised*, and an optimiser *subtracts* a step along it. Parameters are updated in place.

References
----------
D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, arXiv:1412.6980 (Algorithm 1).
I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of initialization and momentum in
deep learning", ICML 2013 (classical momentum).
"""

from __future__ import annotations

import math

import numpy as np

from .backend import get_backend
from .fast import adam_step_sums

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Base class: ``step(params, grads)`` updates ``params`` in place; state round-trips through
    ``state_dict()`` / ``load_state_dict()`` (host arrays, for checkpoints)."""

    def __init__(self, lr: float):
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive finite number, got {lr!r}")
        self.lr = float(lr)                # the rate of the next step (a schedule may change it)
        self.initial_lr = self.lr          # the rate it was configured with
        self.t = 0                         # number of steps taken
        self.slots: dict[str, dict] = {}   # slot name -> {param name -> array}

    def settings(self) -> dict:
        """The configured hyperparameters (JSON types): a resumed run must use the same ones."""
        return {"lr": self.initial_lr}

    def _slot(self, slot, name, like):
        table = self.slots.setdefault(slot, {})
        if name not in table:
            table[name] = get_backend().xp.zeros_like(like)
        return table[name]

    def step(self, params: dict, grads: dict) -> None:
        missing = set(params) - set(grads)
        if missing:
            raise KeyError(f"grads lacks entries for parameters {sorted(missing)}")
        # $t \leftarrow t + 1$, then every parameter $p$ takes its step in place (the subclass's ``_update``)
        self.t += 1
        for name, p in params.items():
            self._update(name, p, grads[name])

    def _update(self, name, p, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict:
        B = get_backend()
        state = {"t": self.t, "lr": self.lr, "settings": self.settings()}
        arrays = {f"{slot}/{name}": B.to_numpy(a, copy=True) for slot, table in self.slots.items() for name, a in table.items()}
        return {"meta": state, "arrays": arrays}

    def load_state_dict(self, state: dict, params: dict | None = None) -> None:
        """Restore a state written by :meth:`state_dict`, every field checked first (a ValueError naming it): the
        step counter ``t`` an int >= 0, the rate ``lr`` finite and >= 0, every array named ``<slot>/<parameter>``,
        finite, of floating point. With ``params`` (the model's, name -> array) also: no slot before the first
        step; after it, every slot this optimiser keeps (:meth:`slot_names`) holds one array for every parameter,
        of the parameter's shape, and no other (a missing slot would restart its moments at zero)."""
        if not isinstance(state, dict) or not isinstance(state.get("meta"), dict) \
                or not isinstance(state.get("arrays"), dict):
            raise ValueError("optimiser state must be {'meta': {...}, 'arrays': {...}} (from state_dict())")
        meta = state["meta"]
        t, lr = meta.get("t"), meta.get("lr", self.lr)          # lr: the rate reached, e.g. by a decaying schedule
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"optimiser state: the step counter t must be an integer >= 0, got {t!r}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"optimiser state: the rate lr must be a finite number >= 0, got {lr!r}")
        slots = self._converted_slots(_slot_tables(state["arrays"]))
        if params is not None:
            self._check_slots(slots, params, t)
        B = get_backend()
        self.t, self.lr = t, float(lr)
        self.slots = {slot: {name: B.xp.asarray(B.asarray(a), copy=True) for name, a in table.items()}
                      for slot, table in slots.items()}

    def slot_names(self) -> tuple:
        """The slots a step keeps for every parameter (none for plain SGD)."""
        return ()

    def _converted_slots(self, slots: dict) -> dict:
        """Slots of another form converted to this optimiser's (Adam: the paper's moments and their sums)."""
        return slots

    def _check_slots(self, slots: dict, params: dict, t: int) -> None:
        """Every slot of :meth:`slot_names` for every parameter, of its shape, after the first step; none before."""
        wanted = self.slot_names() if t > 0 else ()
        unknown = sorted(set(slots) - set(wanted))
        if unknown:
            raise ValueError(f"optimiser state holds slots {unknown} that {type(self).__name__} (with these settings, "
                             f"after {t} steps) does not keep; it keeps {list(wanted)}")
        for slot in wanted:
            table = slots.get(slot, {})
            missing, extra = sorted(set(params) - set(table)), sorted(set(table) - set(params))
            if missing or extra:
                raise ValueError(f"optimiser state slot {slot!r} does not match the model's parameters: missing "
                                 f"{missing}, unexpected {extra}")
            wrong = [f"{name} {tuple(a.shape)} != {tuple(params[name].shape)}" for name, a in table.items()
                     if tuple(a.shape) != tuple(params[name].shape)]
            if wrong:
                raise ValueError(f"optimiser state slot {slot!r} has the wrong shapes: {'; '.join(wrong)}")


def _slot_tables(arrays: dict) -> dict:
    """{slot: {parameter: array}} from state arrays named ``<slot>/<parameter>``, each finite and floating; second
    moments (``v``, ``v_sum``) >= 0."""
    B = get_backend()
    slots: dict = {}
    for key, a in arrays.items():
        if not isinstance(key, str) or "/" not in key:
            raise ValueError(f"optimiser state entry {key!r} is not named <slot>/<parameter> (e.g. 'm_sum/W')")
        slot, name = key.split("/", 1)
        host = np.asarray(B.to_numpy(a))
        if not np.issubdtype(host.dtype, np.floating):
            raise ValueError(f"optimiser state entry {key!r} has dtype {host.dtype}, not floating point")
        if not np.all(np.isfinite(host)):
            raise ValueError(f"optimiser state entry {key!r} holds non-finite values (NaN or inf): the run diverged "
                             "before it was saved")
        if slot in ("v", "v_sum") and host.size and float(np.min(host)) < 0:
            raise ValueError(f"optimiser state entry {key!r} is a second moment but holds negative values")
        slots.setdefault(slot, {})[name] = a
    return slots


class SGD(Optimizer):
    r"""Stochastic gradient descent with classical momentum $\beta$ (``momentum``) and optional L2 weight decay
    $\lambda$ (``weight_decay``):

    .. math::

        v \leftarrow \beta v + (g + \lambda p), \qquad p \leftarrow p - \text{lr}\, v
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)

    def settings(self) -> dict:
        return {**super().settings(), "momentum": self.momentum, "weight_decay": self.weight_decay}

    def slot_names(self) -> tuple:
        return ("velocity",) if self.momentum else ()

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        # classical momentum on the gradient with L2 weight decay: $v \leftarrow \beta v + (g + \lambda p)$
        if self.momentum:
            v = self._slot("velocity", name, p)
            v *= self.momentum
            v += g
            g = v
        # $p \leftarrow p - \text{lr}\, v$ (without momentum: $p \leftarrow p - \text{lr}\, (g + \lambda p)$)
        p -= self.lr * g


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015, Algorithm 1), for every parameter $p$ with gradient $g$ at step $t$, with
    $\beta_1, \beta_2$ = ``betas``:

    .. math::

        m \leftarrow \beta_1 m + (1 - \beta_1)\, g \qquad \text{(biased first moment)}

        v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \qquad \text{(biased second raw moment)}

        \hat{m} = m / (1 - \beta_1^t), \quad \hat{v} = v / (1 - \beta_2^t) \qquad \text{(bias corrections)}

        p \leftarrow p - \text{lr}\, \hat{m} / (\sqrt{\hat{v}} + \epsilon)

    ``fast=True`` (the default) takes the same step on unnormalised moment sums, $m_{\text{sum}} = m / (1 - \beta_1)$
    and $v_{\text{sum}} = v / (1 - \beta_2)$, with every constant folded into two scalars, in place
    (``refvae.fast.adam_step_sums``: one fused kernel on CuPy); ``fast=False`` runs Algorithm 1 as written. The two
    agree to rounding (tests: float64 to 1e-12). The state keeps the form in use: slots ``m``, ``v`` (Algorithm 1) or
    ``m_sum``, ``v_sum`` (fast); a state of the other form is converted on loading.
    """

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, fast: bool = True):
        super().__init__(lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.b1, self.b2, self.eps, self.fast = float(b1), float(b2), float(eps), bool(fast)

    def settings(self) -> dict:
        return {**super().settings(), "betas": [self.b1, self.b2], "eps": self.eps}

    def _update(self, name, p, g):
        B, b1, b2, t = get_backend(), self.b1, self.b2, self.t
        if self.fast:
            # the same step on the sums: $\sqrt{\hat{v}} = s_t \sqrt{v_{\text{sum}}}$ with
            # $s_t = \sqrt{(1 - \beta_2) / (1 - \beta_2^t)}$, so
            # $$p \leftarrow p - \text{lr}_t\, m_{\text{sum}} / (\sqrt{v_{\text{sum}}} + \epsilon_t)$$
            # with $\text{lr}_t = \text{lr}\, (1 - \beta_1) / ((1 - \beta_1^t)\, s_t)$ and $\epsilon_t = \epsilon / s_t$
            s_t = math.sqrt((1.0 - b2) / (1.0 - b2 ** t))
            lr_t = self.lr * (1.0 - b1) / ((1.0 - b1 ** t) * s_t)
            eps_t = self.eps / s_t
            # $m_{\text{sum}} \leftarrow \beta_1 m_{\text{sum}} + g$;
            # $v_{\text{sum}} \leftarrow \beta_2 v_{\text{sum}} + g^2$;
            # $p \leftarrow p - \text{lr}_t\, m_{\text{sum}} / (\sqrt{v_{\text{sum}}} + \epsilon_t)$
            adam_step_sums(B, p, g, self._slot("m_sum", name, p), self._slot("v_sum", name, p), lr_t, b1, b2, eps_t)
            return
        m, v = self._slot("m", name, p), self._slot("v", name, p)
        # $m \leftarrow \beta_1 m + (1 - \beta_1)\, g$
        m[...] = b1 * m + (1.0 - b1) * g
        # $v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2$
        v[...] = b2 * v + (1.0 - b2) * g * g
        # $\hat{m} = m / (1 - \beta_1^t)$, $\hat{v} = v / (1 - \beta_2^t)$
        m_hat = m / (1.0 - b1 ** t)
        v_hat = v / (1.0 - b2 ** t)
        # $p \leftarrow p - \text{lr}\, \hat{m} / (\sqrt{\hat{v}} + \epsilon)$
        p -= self.lr * m_hat / (B.xp.sqrt(v_hat) + self.eps)

    def slot_names(self) -> tuple:
        return ("m_sum", "v_sum") if self.fast else ("m", "v")

    def _converted_slots(self, slots: dict) -> dict:
        # the other form's moments: $m_{\text{sum}} = m / (1 - \beta_1)$, $v_{\text{sum}} = v / (1 - \beta_2)$, and back
        slots = dict(slots)
        for paper, sums, beta in (("m", "m_sum", self.b1), ("v", "v_sum", self.b2)):
            if self.fast and paper in slots:
                slots[sums] = {name: a / (1.0 - beta) for name, a in slots.pop(paper).items()}
            elif not self.fast and sums in slots:
                slots[paper] = {name: a * (1.0 - beta) for name, a in slots.pop(sums).items()}
        return slots
