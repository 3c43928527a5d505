"""The RBM's per-epoch series in ``refvae.plots.plot_training_curves``, recorded by
``BernoulliRBM.epoch_diagnostics``: the hidden units' aggregate posterior against the model's marginal (the
adaptive prior), and the reconstruction error (a monitor, in a panel of its own: it is not the loss)."""

from refvae.plots import register_panel, register_series

register_panel("firing", "Hidden units", "firing probability")
register_series("aggregate_posterior_mean", "firing", "aggregate posterior ⟨P(h=1|v)⟩, mean over units")
register_series("model_marginal_mean", "firing", "model marginal P(h=1), mean over units")
register_series("prior_gap_max", "firing", "largest |aggregate − marginal| over units")
register_panel("reconstruction", "Reconstruction through P(h|v): a monitor, not the likelihood",
               "squared error per example")
register_series("reconstruction_error", "reconstruction", "mean squared reconstruction error (training data)")
register_panel("likelihood", "Exact log-likelihood (small models: log Z by enumeration)", "nats per example")
register_series("exact_log_likelihood", "likelihood", "mean log P(v), monitored training examples")
