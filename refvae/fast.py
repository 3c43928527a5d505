"""Fast twins: faster forms of computations whose textbook forms are written out elsewhere.

Each function here computes what its twin computes, in fewer passes over memory, on a thread pool or in one
fused GPU kernel. The twin is the code to read; this is the code that runs where it pays. Tests compare each
pair (float64 to 1e-12, float32 to 1e-6 relative).

===============================  =========================================  =======================================
fast form (here)                 textbook twin                              where it is chosen
===============================  =========================================  =======================================
``map_blocks``                   ``[fn(a, b) for each block]``               IW log-likelihoods (VAE, Helmholtz)
``enumerated_moments``           ``rbm.partition.model_expectations``        an RBM's exact negative phase, when the
                                 (log Z first, then the moments: two         hidden layer is the one enumerated
                                 passes, three matrix products)
===============================  =========================================  =======================================

A model's own fast twin lives beside it when it needs the model's structure: ``wakesleep/fast.py``
(``exact_step``, twin of ``HelmholtzMachine._exact_step``).

This is the one module besides ``backend.py`` that asks which array library is underneath (``B.name``): a fused
kernel and a thread pool are library-specific by nature.
"""

from __future__ import annotations

import contextlib
import os


from .enumeration import binary_states

__all__ = ["enumerated_moments", "map_blocks"]


# ------------------------------------------------------------------------------------------------
# Blocks of rows on every core
# ------------------------------------------------------------------------------------------------
_POOL = None
_BLAS_CONTROLLER = None   # threadpoolctl.ThreadpoolController, or False when threadpoolctl is not installed


def map_blocks(B, fn, n: int, block: int) -> list:
    """``[fn(start, stop) for consecutive blocks of range(n)]``, in order.

    NumPy: the blocks run on a pool of one thread per usable core. NumPy's element-wise ufuncs release the GIL,
    so long element-wise work (such as a log-likelihood over millions of decoded pixels) uses every core, and
    blocks of ``block`` rows keep each pass's operands in cache. Other backends: one after the other (the device
    parallelises within each call). ``fn`` must not change shared state.
    """
    starts = range(0, n, block)
    if B.name != "numpy" or len(starts) < 2:
        return [fn(a, min(a + block, n)) for a in starts]
    with _one_blas_thread():                       # the pool's threads are the parallelism: no BLAS threads inside
        return list(_thread_pool().map(lambda a: fn(a, min(a + block, n)), starts))


def _one_blas_thread():
    """A context in which BLAS uses one thread, when threadpoolctl is installed (it comes with scikit-learn);
    otherwise nothing: matrix products inside the pool's threads would each start BLAS's own threads and
    oversubscribe the cores (docs/benchmarks.md has the measurement)."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _BLAS_CONTROLLER = False
        else:
            _BLAS_CONTROLLER = ThreadpoolController()
    if _BLAS_CONTROLLER is False:
        return contextlib.nullcontext()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _thread_pool():
    """The shared thread pool of :func:`map_blocks` (one worker per usable core, created on first use)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        _POOL = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="refvae")
    return _POOL


# ------------------------------------------------------------------------------------------------
# The moments of a binary bipartite model by enumerating one layer, in one pass
# ------------------------------------------------------------------------------------------------
def enumerated_moments(B, W, b, c, block: int = 2**10) -> dict:
    """log Z, E[h], E[v] and E[v h^T] of P(v, h) = exp(b.v + c.h + v^T W h) / Z by enumerating every h.

    ``W`` (n_v, n_h), ``b`` (n_v,), ``c`` (n_h,). Summing v out analytically, each state h has
    log p*(h) = c.h + sum_i softplus(a_i), a = b + W h, and E[v | h] = sigmoid(a). One pass over blocks of states:
    each block computes a once, softplus(a) and sigmoid(a) from one exp(-|a|), and its sums weighted by
    exp(log p*(h) - m) with the block's own maximum m; the blocks are then rescaled to the common maximum (the
    log-sum-exp trick, per block). NumPy runs the blocks on every core (``map_blocks``).

    Returns ``{"v": (n_v,), "h": (n_h,), "vh": (n_v, n_h), "log_z": float}``, as the textbook twin
    ``rbm.partition.model_expectations``.
    """
    xp = B.xp
    n_h = W.shape[1]
    dtype = B.dtype_name(W.dtype)

    def block_sums(start, stop):
        S = binary_states(start, stop, n_h, dtype)                          # (m, n_h)
        a = S @ W.T + b                                                     # (m, n_v)
        e = xp.exp(-xp.abs(a))                                              # in (0, 1]: no overflow
        softplus_a = xp.maximum(a, 0.0) + xp.log1p(e)
        pv = xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))              # sigmoid(a) from the same e
        log_p = S @ c + xp.sum(softplus_a, axis=1)                          # log p*(h), (m,)
        m = xp.max(log_p)
        w = xp.exp(log_p - m)                                               # (m,), largest 1
        return m, xp.sum(w), w @ S, w @ pv, (pv * xp.reshape(w, (-1, 1))).T @ S

    parts = map_blocks(B, block_sums, 2 ** n_h, block)
    m_all = xp.max(xp.stack([p[0] for p in parts]))
    scales = [xp.exp(p[0] - m_all) for p in parts]
    total = sum(s * p[1] for s, p in zip(scales, parts))
    e_h = sum(s * p[2] for s, p in zip(scales, parts)) / total
    e_v = sum(s * p[3] for s, p in zip(scales, parts)) / total
    e_vh = sum(s * p[4] for s, p in zip(scales, parts)) / total
    return {"v": e_v, "h": e_h, "vh": e_vh, "log_z": float(m_all + xp.log(total))}
