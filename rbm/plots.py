"""The RBM's per-epoch series in ``refvae.plots.plot_training_curves``, recorded by
``BernoulliRBM.epoch_diagnostics``: the hidden units' aggregate posterior against the model's marginal (the
adaptive prior), and the reconstruction error (a monitor, in a panel of its own: it is not the loss)."""

#: Panel name -> title, y label, {history key: legend label} (listed in ``refvae.app``).
CURVES = {
    "firing": {"title": "Hidden units", "ylabel": "firing probability",
               "series": {"aggregate_posterior_mean": "aggregate posterior ⟨P(h=1|v)⟩, mean over units",
                          "model_marginal_mean": "model marginal P(h=1), mean over units",
                          "prior_gap_max": "largest |aggregate − marginal| over units"}},
    "reconstruction": {"title": "Reconstruction through P(h|v): a monitor, not the likelihood",
                       "ylabel": "squared error per example",
                       "series": {"reconstruction_error": "mean squared reconstruction error (training data)"}},
    "likelihood": {"title": "Exact log-likelihood (small models: log Z by enumeration)", "ylabel": "nats per example",
                   "series": {"exact_log_likelihood": "mean log P(v), monitored training examples"}},
}
