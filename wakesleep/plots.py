"""The Helmholtz machine's per-epoch series in ``refvae.plots.plot_training_curves``: the top layer's aggregate
recognition distribution against the prior (``HelmholtzMachine.epoch_diagnostics``), and the exact KL(data ||
model) that ``refvae train helmholtz`` records on a toy dataset."""

#: Panel name -> title, y label, {history key: legend label} (listed in ``refvae.app``).
CURVES = {
    "firing": {"title": "Hidden units", "ylabel": "firing probability",
               "series": {"aggregate_posterior_mean": "aggregate posterior ⟨P(h=1|v)⟩, mean over units",
                          "model_marginal_mean": "model marginal P(h=1), mean over units",
                          "prior_gap_max": "largest |aggregate − marginal| over units"}},
    "data": {"title": "Fit to the known data distribution", "ylabel": "nats",
             "series": {"kl_data_model": "KL(data ‖ model), exact"}},
}
