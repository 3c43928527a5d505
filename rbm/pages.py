"""The RBM's pages of the annotated reference (``refvae pages``): the likelihood gradient by CD-k, PCD and exact
enumeration; the partition function exactly, by AIS and by RAISE.

Each :class:`refvae.pages.Page` names functions of the source in the papers' order, the tests that prove their
equations and the figures that show them; the site is built from the source itself (:mod:`refvae.pages`).
"""

from refvae.pages import Figure, Page, Section

__all__ = ["PAGES"]

G = "rbm/gradients.py"
Z = "rbm/partition.py"
R = "rbm/reverse_annealing.py"
T, TR = "tests/test_rbm.py::", "tests/test_reverse_annealing.py::"
_BRUTE = (T + "test_free_energy_and_log_partition_match_brute_force",)
_FD = T + "test_gradients_pass_the_finite_difference_check"
_EXACT_FIGURE = Figure("docs/results/rbm_exact/exact_training.png",
                       "Training with the exact negative phase: the hidden biases' prior moves to the aggregate "
                       "posterior (docs/rbm.md).")

PAGES = (
    Page("rbm-gradients", "The RBM's likelihood gradient: positive phase, CD-k, PCD and exact negative phases", G, (
        Section(f"{G}::free_energy", tests=_BRUTE),
        Section(f"{G}::positive_phase", tests=(_FD,)),
        Section(f"{G}::visible_probs", tests=(T + "test_pcd_update_is_one_sweep_from_the_chains_hidden_states",)),
        Section(f"{G}::statistics", tests=(_FD,)),
        Section(f"{G}::gibbs_sweeps", tests=(T + "test_pcd_update_is_one_sweep_from_the_chains_hidden_states",)),
        Section(f"{G}::cd_negative_phase",
                tests=(T + "test_cd_starts_from_the_positive_phase_and_draws_from_the_rng_given",
                       T + "test_cd_gradient_with_exact_negative_phase_is_the_exact_gradient")),
        Section(f"{G}::pcd_negative_phase",
                tests=(T + "test_pcd_gradient_is_the_documented_formula_with_a_partial_batch",)),
        Section(f"{G}::exact_negative_phase",
                tests=(T + "test_exact_negative_phase_against_brute_force_and_finite_differences",),
                figures=(_EXACT_FIGURE,)),
        Section(f"{G}::likelihood_gradient", tests=(_FD,)),
        Section(f"{G}::free_energy_gap", tests=(T + "test_loss_is_the_free_energy_gap_and_leaves_the_chains",)),
        Section(f"{G}::weight_decay_penalty", tests=(_FD,)),
        Section(f"{G}::sparsity_penalty", tests=(T + "test_sparsity_running_average_and_its_pull",)),
    )),
    Page("rbm-partition", "The RBM's partition function: exact enumeration, AIS, and RAISE's conservative bound", Z, (
        Section(f"{Z}::exact_log_partition", tests=_BRUTE + (T + "test_chunked_enumeration_agrees",)),
        Section(f"{Z}::model_expectations", tests=(T + "test_model_expectations_match_brute_force",)),
        Section(f"{Z}::ais_betas", tests=(T + "test_ais_schedule",)),
        Section(f"{Z}::base_rate_biases",
                tests=(T + "test_ais_matches_a_direct_implementation_and_draws_nothing_unused",)),
        Section(f"{Z}::ais_log_partition", tests=(T + "test_ais_agrees_with_exact_and_tightens",)),
        Section(f"{Z}::annealing_increment",
                tests=(T + "test_ais_matches_a_direct_implementation_and_draws_nothing_unused",)),
        Section(f"{Z}::ais_log_weights",
                tests=(T + "test_ais_matches_a_direct_implementation_and_draws_nothing_unused",)),
        Section(f"{Z}::ais_estimate",
                tests=(T + "test_ais_estimate_band_and_trust_equal_a_direct_recomputation",)),
        Section(f"{R}::raise_log_weights",
                tests=(TR + "test_the_weight_is_unbiased_for_the_annealing_model",)),
        Section(f"{R}::raise_log_likelihood",
                tests=(TR + "test_raise_approaches_exact_from_below_and_brackets_with_ais",)),
    )),
)
