"""Finite-difference gradient checks in float64.

For each parameter entry theta_i the central difference

    n_i = (L(theta + h e_i) - L(theta - h e_i)) / (2 h)

is compared with the hand-written gradient a_i. The error of a parameter array is

    err = max_i |a_i - n_i| / max_i max(|a_i|, |n_i|)

the worst disagreement relative to the array's own gradient scale (one tiny entry cannot blow it
up; any entry that is wrong by more than err * max|a| does). Central differences have truncation
error O(h^2) and round-off O(eps_64 |L| / h), so with h = 1e-6 and losses of order 1-100 a correct
gradient gives err ~1e-9 or less; the default tolerance is 1e-6.

Usable on any function: ``gradcheck(fn, params)`` where ``fn(params) -> (loss, grads)`` (or ``fn``
returns only the loss and ``grads`` is given), ``params`` a dict of float64 arrays that ``fn``
reads, which this function perturbs in place and restores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .backend import get_backend

__all__ = ["CHECKS", "GradcheckResult", "gradcheck", "register_checks", "run_all"]


@dataclass
class GradcheckResult:
    """Worst relative error per parameter, and whether all are within ``tol``."""

    errors: dict
    tol: float
    checked: dict = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tol

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        width = max([len(k) for k in self.errors] + [9])
        lines = [f"{'parameter':<{width}}  {'entries':>7}  {'rel. error':>10}"]
        for k, e in self.errors.items():
            flag = "" if e <= self.tol else "  FAIL"
            lines.append(f"{k:<{width}}  {self.checked.get(k, 0):>7}  {e:>10.2e}{flag}")
        lines.append(f"worst {self.max_error:.2e} (tolerance {self.tol:.0e}): {'ok' if self.ok else 'FAILED'}")
        return "\n".join(lines)


def _entries(shape, max_entries, rng):
    """Index tuples to check: all entries, or ``max_entries`` of them at random (host ints)."""
    import itertools

    total = 1
    for s in shape:
        total *= s
    all_idx = list(itertools.product(*[range(s) for s in shape]))
    if max_entries is None or total <= max_entries:
        return all_idx
    pick = rng.choice(total, size=max_entries, replace=False)
    return [all_idx[i] for i in sorted(pick)]


def gradcheck(fn, params: dict, grads: dict | None = None, *, h: float = 1e-6, tol: float = 1e-6,
              max_entries: int | None = None, seed: int = 0, names=None) -> GradcheckResult:
    """Compare hand-written gradients with float64 central differences.

    Parameters
    ----------
    fn : callable
        ``fn(params)`` returning the loss (float) or ``(loss, grads)``. It must read the arrays in
        ``params`` (they are perturbed in place) and be deterministic (fix any noise).
    params : dict of float64 arrays
    grads : dict, optional
        The gradients to check; when omitted they are taken from ``fn(params)[1]``.
    h : float
        Step of the central difference.
    tol : float
        Largest acceptable relative error (see module docstring).
    max_entries : int, optional
        Check at most this many entries of each parameter, chosen at random; all when None.
    names : iterable of str, optional
        Only these parameters.

    Returns
    -------
    GradcheckResult
        ``.errors[name]``, ``.ok``, ``.max_error``; printable as a table.
    """
    import numpy as np  # host-side bookkeeping only

    B = get_backend()
    for k, p in params.items():
        if B.dtype_name(p.dtype) != "float64":
            raise TypeError(
                f"gradcheck needs float64 parameters; {k!r} is {p.dtype}. Build the model with dtype='float64'"
            )

    def loss_of(out):
        return float(out[0] if isinstance(out, tuple) else out)

    if grads is None:
        out = fn(params)
        if not isinstance(out, tuple):
            raise TypeError("fn returned only a loss: pass grads=..., or make fn return (loss, grads)")
        grads = out[1]
    grads = {k: B.to_numpy(v) for k, v in grads.items()}
    rng = np.random.default_rng(seed)
    errors, checked = {}, {}
    for name in (names if names is not None else params):
        p = params[name]
        analytic = grads[name]
        idx = _entries(tuple(p.shape), max_entries, rng)
        a = np.empty(len(idx))
        num = np.empty(len(idx))
        for j, i in enumerate(idx):
            original = float(p[i])
            p[i] = original + h
            up = loss_of(fn(params))
            p[i] = original - h
            down = loss_of(fn(params))
            p[i] = original
            num[j] = (up - down) / (2.0 * h)
            a[j] = analytic[i]
        scale = float(np.max(np.maximum(np.abs(a), np.abs(num)))) if len(idx) else 0.0
        diff = float(np.max(np.abs(a - num))) if len(idx) else 0.0
        errors[name] = diff / scale if scale > 0 else diff
        checked[name] = len(idx)
    return GradcheckResult(errors, tol, checked)


# ------------------------------------------------------------------------------------------------
# The registry behind ``refvae gradcheck``, filled by ``refvae.app.install`` from each model's table entry.
# ------------------------------------------------------------------------------------------------
CHECKS: dict = {}


def register_checks(checks: dict) -> None:
    """Add ``{name: fn(seed) -> GradcheckResult}`` to the checks ``refvae gradcheck`` runs (``refvae.app``'s table
    lists each model's)."""
    for name, fn in checks.items():
        if not callable(fn):
            raise TypeError(f"gradient check {name!r} must be a function of the seed, got {fn!r}")
        CHECKS[name] = fn


def run_all(seed: int = 0):
    """Yield ``(name, GradcheckResult)`` for every installed check, on the active backend."""
    for name, fn in CHECKS.items():
        yield name, fn(seed)
