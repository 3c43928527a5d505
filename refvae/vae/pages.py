"""The Gaussian VAE's pages of the annotated reference (``refvae pages``): the ELBO and its backward pass, the
importance-weighted likelihood and the IWAE objective, the aggregate posterior, the linear VAE in closed form.

Each :class:`refvae.pages.Page` names functions of the source in the papers' order, the tests that prove their
equations and the figures that show them; the site is built from the source itself (:mod:`refvae.pages`).
"""

from refvae.pages import Figure, Page, Section

__all__ = ["PAGES"]

ELBO = "refvae/vae/elbo.py"
_GRADIENT_TESTS = ("tests/test_vae.py::test_loss_gradient_matches_finite_differences",
                   "tests/test_vae.py::test_loss_equals_textbook_negative_elbo")
_IW_TESTS = ("tests/test_vae.py::test_log_likelihood_matches_quadrature_for_one_latent",
             "tests/test_vae.py::test_log_likelihood_chunking_over_examples")
_IWAE_TESTS = ("tests/test_vae.py::test_iwae_gradient_matches_finite_differences",
               "tests/test_vae.py::test_iwae_loss_is_minus_the_iw_estimate_at_the_same_noise")
_NUMERICS_TESTS = ("tests/test_numerics.py::test_bernoulli_log_prob_equals_textbook_form",
                   "tests/test_numerics.py::test_kl_standard_normal_matches_quadrature")
_VAE_CURVE = Figure("docs/results/reproductions/iwae_mnist/vae_k1_curve.png",
                    "The VAE on Burda et al.'s protocol: the test negative log-likelihood and -ELBO as training "
                    "goes on (docs/reproductions.md).")
_IWAE_CURVE = Figure("docs/results/reproductions/iwae_mnist/iwae_k5_curve.png",
                     "The IWAE (k = 5) on the same protocol: its -ELBO stays above the VAE's while its likelihood "
                     "passes it.")

PAGES = (
    Page("vae", "The Gaussian VAE: the ELBO, forward then backward", ELBO, (
        Section(f"{ELBO}::encode", tests=_GRADIENT_TESTS[::-1]),
        Section(f"{ELBO}::decode", tests=_GRADIENT_TESTS[::-1]),
        Section(f"{ELBO}::reconstruction_nll", tests=_NUMERICS_TESTS[:1]),
        Section(f"{ELBO}::kl_divergence", tests=_NUMERICS_TESTS[1:]),
        Section(f"{ELBO}::forward", tests=_GRADIENT_TESTS[1:]),
        Section(f"{ELBO}::negative_elbo_and_grads", tests=_GRADIENT_TESTS, figures=(_VAE_CURVE,)),
        Section(f"{ELBO}::_decoder_backward", tests=_GRADIENT_TESTS[:1]),
        Section(f"{ELBO}::_kl_grad", tests=("tests/test_numerics.py::test_kl_standard_normal_derivative",)),
        Section(f"{ELBO}::_encoder_backward", tests=_GRADIENT_TESTS[:1]),
    )),
    Page("importance-weighting", "Importance weighting: the IW log-likelihood and the IWAE objective", ELBO, (
        Section(f"{ELBO}::iw_log_likelihood", tests=_IW_TESTS),
        Section(f"{ELBO}::_log_weights", tests=_IW_TESTS[:1]),
        Section(f"{ELBO}::negative_iw_bound_and_grads", tests=_IWAE_TESTS, figures=(_IWAE_CURVE,)),
    )),
    Page("aggregate-posterior", "The aggregate posterior: its moments, its mismatch with the prior, the alignment",
         "refvae/vae/aggregate.py", (
             Section("refvae/vae/aggregate.py::aggregate_posterior",
                     tests=("tests/test_aggregate.py::test_moments_equal_direct_computation",)),
             Section("refvae/vae/aggregate.py::_moments",
                     tests=("tests/test_aggregate.py::test_moments_are_sound_for_large_offsets",),
                     figures=(Figure("docs/results/aggregate_vs_prior/aggregate_baseline.png",
                                     "The aggregate posterior of a trained VAE against the prior, per latent "
                                     "dimension (docs/aggregate-posterior.md)."),)),
             Section("refvae/vae/aggregate.py::prior_mismatch",
                     tests=("tests/test_aggregate.py::test_mismatch_report",),
                     figures=(Figure("docs/results/aggregate_vs_prior/mismatch_per_epoch.png",
                                     "The mismatch as training goes on, for four settings."),)),
             Section("refvae/vae/aggregate.py::align_to_prior",
                     tests=("tests/test_aggregate.py::test_alignment_preserves_the_decoder_and_matches_the_prior",),
                     figures=(Figure("docs/results/prior_alignment/prior_alignment.png",
                                     "Samples and likelihood before and after the alignment."),)),
             Section("refvae/vae/aggregate.py::_shift_scale_latent",
                     tests=("tests/test_aggregate.py::test_alignment_preserves_the_decoder_and_matches_the_prior",)),
         )),
    Page("linear-vae", "The linear VAE: pPCA and factor analysis in closed form", "refvae/vae/linear.py", (
        Section("refvae/vae/linear.py::ppca_ml",
                tests=("tests/test_linear_vae.py::test_ppca_ml_is_the_maximum_of_the_likelihood",)),
        Section("refvae/vae/linear.py::factor_analysis_em",
                tests=("tests/test_linear_vae.py::test_factor_analysis_em_matches_scikit_learn",)),
        Section("refvae/vae/linear.py::exact_log_likelihood",
                tests=("tests/test_linear_vae.py::test_exact_log_likelihood_and_posterior_against_scipy",)),
        Section("refvae/vae/linear.py::exact_posterior",
                tests=("tests/test_linear_vae.py::test_exact_log_likelihood_and_posterior_against_scipy",)),
        Section("refvae/vae/linear.py::optimal_encoder", tests=(
            "tests/test_linear_vae.py::test_optimal_encoder_is_the_best_diagonal_gaussian_for_a_non_diagonal_"
            "posterior",)),
        Section("refvae/vae/linear.py::_elbo",
                tests=("tests/test_linear_vae.py::test_the_elbo_is_tight_at_the_closed_form_optimum",)),
        Section("refvae/vae/linear.py::gap_decomposition",
                tests=("tests/test_linear_vae.py::test_gap_decomposition_names_where_the_elbo_falls_short",),
                figures=(Figure("docs/results/linear_vae/elbo_curves.png",
                                "Training a linear VAE reaches the closed-form maximum likelihood."),)),
    )),
)
