"""Fast twin of the Helmholtz machine's exact maximum-likelihood step (``algorithm="exact"``).

The textbook form, :meth:`wakesleep.model.HelmholtzMachine._exact_step`, pairs every example x with every hidden
configuration h as a row and runs the wake and sleep updates on those n * 2^H rows, weighted by P(h | x) / n.
Most of that work is repeated: the generative logits depend on h only, and the recognition logits of the first
layer on x only. This twin computes each once and combines them with matrix products. With weights
w[x, h] = P(h | x) / n (n, m) and s[h] = sum_x w[x, h] (m,), for the states H_l (m, n_l) of layer l:

    generative layer 1 (x | h_1):    D = s * sigmoid(A_1) - w^T X         dG_1 = H_1^T D,  dg_1 = sum_h D
    generative layer l >= 2:         D = s * (sigmoid(A_l) - H_{l-1})      dG_l = H_l^T D,  dg_l = sum_h D
    factorial prior:                 d prior.b = sigmoid(b) - s^T H_L
    recognition layer 1 (h_1 | x):   D = sigmoid(X R_1 + r_1) / n - w H_1  dR_1 = X^T D,    dr_1 = sum_x D
    recognition layer l >= 2:        D = s * (sigmoid(H_{l-1} R_l + r_l) - H_l)   dR_l = H_{l-1}^T D

where A_l = H_l G_l + g_l are the generative logits of the states. Each line is the textbook's weighted sum over
the (x, h) rows with the sum over the rows that share a factor taken first (tests: equal to 1e-12 in float64).
"""

from __future__ import annotations

from refvae.numerics import logsumexp, sigmoid

from .likelihood import configurations_log_joint

__all__ = ["exact_step"]


def exact_step(model, x, states_per_block: int = 2**14):
    """(loss, grads, None, top_mean) as ``HelmholtzMachine._exact_step(x)``, for x (n, n_visible).

    Pass 1 finds log P(x) over blocks of states; pass 2 forms the weighted sums (reusing the block when there
    is only one)."""
    xp = model.xp
    n = x.shape[0]
    L = model.n_layers
    total = 2 ** sum(model.layer_sizes[1:])
    starts = list(range(0, total, states_per_block))
    first = configurations_log_joint(model, x, 0, min(states_per_block, total))
    log_px = logsumexp(first[2], axis=1)                                       # pass 1: log P(x), (n,)
    for start in starts[1:]:
        stop = min(start + states_per_block, total)
        log_px = xp.logaddexp(log_px, logsumexp(configurations_log_joint(model, x, start, stop)[2], axis=1))
    grads, top_mean = {}, None
    rec1 = sigmoid(model.recognition_logits(1, x)) / n                         # sigmoid(X R_1 + r_1) / n, (n, n_1)
    for start in starts:                                                       # pass 2: the weighted sums
        stop = min(start + states_per_block, total)
        hs, gen_logits, log_joint = first if start == 0 else configurations_log_joint(model, x, start, stop)
        w = xp.exp(log_joint - xp.reshape(log_px, (-1, 1))) / n                # P(h | x) / n, (n, m)
        s = xp.sum(w, axis=0)                                                  # (m,)
        s_col = xp.reshape(s, (-1, 1))
        block = {}
        d = s_col * sigmoid(gen_logits[0]) - w.T @ x                           # generative layer 1, (m, n_visible)
        block["gen.1.W"], block["gen.1.b"] = hs[0].T @ d, xp.sum(d, axis=0)
        for l in range(2, L + 1):
            d = s_col * (sigmoid(gen_logits[l - 1]) - hs[l - 2])
            block[f"gen.{l}.W"], block[f"gen.{l}.b"] = hs[l - 1].T @ d, xp.sum(d, axis=0)
        top = s @ hs[-1]                                                       # sum_h s_h h_L, (n_L,)
        block["prior.b"] = sigmoid(model.prior_params["b"]) * xp.sum(s) - top  # the factorial prior
        d = -(w @ hs[0])                                                       # recognition layer 1: the target part
        block["rec.1.W"], block["rec.1.b"] = x.T @ d, xp.sum(d, axis=0)
        for l in range(2, L + 1):
            d = s_col * (sigmoid(model.recognition_logits(l, hs[l - 2])) - hs[l - 1])
            block[f"rec.{l}.W"], block[f"rec.{l}.b"] = hs[l - 2].T @ d, xp.sum(d, axis=0)
        grads = block if not grads else {name: grads[name] + g for name, g in block.items()}
        top_mean = top if top_mean is None else top_mean + top
    grads["rec.1.W"] = grads["rec.1.W"] + x.T @ rec1                           # the prediction part, once
    grads["rec.1.b"] = grads["rec.1.b"] + xp.sum(rec1, axis=0)
    return -xp.mean(log_px), grads, None, top_mean
