"""Fast twins: faster forms of computations whose textbook forms are written out elsewhere.

Each function here computes what its twin computes, in fewer passes over memory, on a thread pool or in one
fused GPU kernel. The twin is the code to read; this is the code that runs where it pays. Tests compare each
pair (float64 to 1e-12, float32 to 1e-6 relative).

===============================  =========================================  =======================================
fast form (here)                 textbook twin                              where it is chosen
===============================  =========================================  =======================================
``adam_step_sums``               ``optim.Adam`` with ``fast=False``          ``Adam()`` (``fast=True``, the default)
                                 (Kingma & Ba, Algorithm 1, line by line)
``bernoulli_nll_with_grad``      ``numerics.bernoulli_log_prob`` and         the VAE's training step
                                 ``numerics.bernoulli_log_prob_grad``
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

import numpy as np

from .numerics import namespace

__all__ = ["adam_step_sums", "bernoulli_nll_with_grad", "map_blocks"]


# ------------------------------------------------------------------------------------------------
# Adam on unnormalised moment sums
# ------------------------------------------------------------------------------------------------
def adam_step_sums(B, p, g, m_sum, v_sum, lr_t: float, b1: float, b2: float, eps_t: float) -> None:
    """In place: one Adam step on parameter ``p`` with gradient ``g``, keeping unnormalised moment sums.

        m_sum <- b1 m_sum + g;   v_sum <- b2 v_sum + g^2;   p <- p - lr_t m_sum / (sqrt(v_sum) + eps_t)

    With m = (1 - b1) m_sum, v = (1 - b2) v_sum (the paper's moments), s_t = sqrt((1 - b2) / (1 - b2^t)),
    lr_t = lr (1 - b1) / ((1 - b1^t) s_t) and eps_t = eps / s_t this is exactly the paper's
    p <- p - lr m_hat / (sqrt(v_hat) + eps), since sqrt(v_hat) = s_t sqrt(v_sum) (``optim.Adam`` computes the
    constants). NumPy: ten in-place passes with one scratch array, against about sixteen with temporaries for
    the textbook form. CuPy: one fused kernel. Other namespaces: the same expression in array-API operations.
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
# The Bernoulli term and its gradient in one pass
# ------------------------------------------------------------------------------------------------
def bernoulli_nll_with_grad(x, logits):
    """(-log p(x | logits), d(-log p) / d logits) together, sharing e = e^{-|l|}.

        -log p = sum_j [ softplus(l_j) - x_j l_j ],   softplus(l) = max(l, 0) + log1p(e)
        d(-log p) / d l = sigmoid(l) - x,              sigmoid(l) = e^{min(l, 0)} / (1 + e)

    The twin: ``-numerics.bernoulli_log_prob(x, l)`` and ``-numerics.bernoulli_log_prob_grad(x, l)``, which
    compute e^{-|l|} twice.

    Returns
    -------
    nll : array (batch,)
    grad : array (batch, d)
    """
    xp = namespace(logits)
    e = xp.exp(-xp.abs(logits))                                        # (batch, d), in (0, 1]
    nll = xp.sum(xp.maximum(logits, 0.0) + xp.log1p(e) - x * logits, axis=-1)
    sig = xp.exp(xp.minimum(logits, 0.0)) / (1.0 + e)                  # sigmoid(l), as in ``numerics.sigmoid``
    return nll, sig - x


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
    otherwise nothing. Matrix products inside the pool's threads each starting BLAS's own threads oversubscribe
    the cores: an RBM's exact negative phase on 784-16 (float64, 2 idle cores) took 1.08 s per evaluation that
    way, 0.54 s with one BLAS thread."""
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
