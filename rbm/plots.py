"""The RBM's per-epoch series in ``refvae.plots.plot_training_curves``: the hidden units' aggregate posterior
against the model's marginal (the adaptive prior), recorded by ``BernoulliRBM.epoch_diagnostics``."""

from refvae.plots import register_panel, register_series

register_panel("firing", "Hidden units", "firing probability")
register_series("aggregate_posterior_mean", "firing", "aggregate posterior ⟨P(h=1|v)⟩, mean over units")
register_series("model_marginal_mean", "firing", "model marginal P(h=1), mean over units")
register_series("prior_gap_max", "firing", "largest |aggregate − marginal| over units")
