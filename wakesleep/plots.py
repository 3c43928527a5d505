"""The Helmholtz machine's per-epoch series in ``refvae.plots.plot_training_curves``: the top layer's aggregate
recognition distribution against the prior (``HelmholtzMachine.epoch_diagnostics``), and the exact KL(data ||
model) that ``refvae train helmholtz`` records on a toy dataset."""

from refvae.plots import register_panel, register_series

register_panel("firing", "Hidden units", "firing probability")
register_series("aggregate_posterior_mean", "firing", "aggregate posterior ⟨P(h=1|v)⟩, mean over units")
register_series("model_marginal_mean", "firing", "model marginal P(h=1), mean over units")
register_series("prior_gap_max", "firing", "largest |aggregate − marginal| over units")
register_panel("data", "Fit to the known data distribution", "nats")
register_series("kl_data_model", "data", "KL(data ‖ model), exact")
