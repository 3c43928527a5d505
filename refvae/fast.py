"""The library-specific fast paths: a thread pool for NumPy and a fused CuPy kernel.

Every other fast form sits beside its textbook twin, as a visible ``if fast:`` choice, in the file of the equation
it computes; tests hold each pair equal (float64 to 1e-12):

=====================================================  ===========================================================
where the choice is made                               fast form / textbook form
=====================================================  ===========================================================
``refvae.optim.Adam._update`` (``Adam(fast=True)``)     unnormalised moment sums (``adam_step_sums``, here) /
                                                       Kingma & Ba's Algorithm 1, line by line
``refvae.vae.elbo`` (``GaussianVAE(fast=True)``)        ``numerics.bernoulli_nll_with_grad`` (e^{-|l|} once) /
                                                       ``numerics.bernoulli_log_prob`` and ``_grad``; the IW blocks
                                                       on ``map_blocks`` (here) / a plain loop
``rbm.partition.model_expectations(fast=True)``          ``model_expectations_one_pass`` (one pass over the states) /
                                                       log Z first, then the moments
``rbm.gradients.FAST_SIGMOID``                          ``numerics.sigmoid_tanh`` / ``numerics.sigmoid``
``wakesleep.rules.exact_step(fast=True)``               ``exact_step_fast`` (sums over shared factors first) /
                                                       every (x, h) pair as a row
=====================================================  ===========================================================

This is the one module besides ``backend.py`` that asks which array library is underneath (``B.name``): a fused
kernel and a thread pool are library-specific by nature. What each fast form saves is in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

__all__ = ["adam_step_sums", "map_blocks"]


# ------------------------------------------------------------------------------------------------
# Adam on unnormalised moment sums
# ------------------------------------------------------------------------------------------------
def adam_step_sums(B, p, g, m_sum, v_sum, lr_t: float, b1: float, b2: float, eps_t: float) -> None:
    """In place, Adam's step on unnormalised sums (``optim.Adam(fast=True)``, whose ``_update`` computes the constants
    and shows the textbook form beside this call)::

        m_sum <- b1 m_sum + g;   v_sum <- b2 v_sum + g^2;   p <- p - lr_t m_sum / (sqrt(v_sum) + eps_t)

    NumPy: in-place operations with one scratch array; CuPy: one fused kernel; other namespaces: the same
    expression in array-API operations (docs/benchmarks.md has what each costs).
    """
    if B.name == "numpy":
        m_sum *= b1
        m_sum += g                                # m_sum <- b1 m_sum + g
        tmp = np.multiply(g, g)
        v_sum *= b2
        v_sum += tmp                              # v_sum <- b2 v_sum + g^2
        np.sqrt(v_sum, out=tmp)
        tmp += eps_t
        np.divide(m_sum, tmp, out=tmp)
        tmp *= lr_t
        p -= tmp                                  # p <- p - lr_t m_sum / (sqrt(v_sum) + eps_t)
    elif B.name == "cupy":
        _cupy_adam_kernel()(g, lr_t, b1, b2, eps_t, p, m_sum, v_sum)
    else:
        m_sum *= b1
        m_sum += g
        v_sum *= b2
        v_sum += g * g
        p -= lr_t * (m_sum / (B.xp.sqrt(v_sum) + eps_t))


_ADAM_KERNEL = None


def _cupy_adam_kernel():
    """The fused CuPy kernel of :func:`adam_step_sums` (compiled once, on first use)."""
    global _ADAM_KERNEL
    if _ADAM_KERNEL is None:
        import cupy

        _ADAM_KERNEL = cupy.ElementwiseKernel(
            "T g, float64 lr_t, float64 b1, float64 b2, float64 eps_t", "T p, T m_sum, T v_sum",
            """
            m_sum = (T)b1 * m_sum + g;
            v_sum = (T)b2 * v_sum + g * g;
            p -= (T)lr_t * m_sum / (sqrt(v_sum) + (T)eps_t);
            """,
            "refvae_adam_step")
    return _ADAM_KERNEL


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
