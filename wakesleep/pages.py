"""The Helmholtz machine's page of the annotated reference (``refvae pages``): the two networks, the wake and
sleep updates, the adaptive prior, reweighted wake-sleep and exact maximum likelihood.

Each :class:`refvae.pages.Page` names functions of the source in the papers' order, the tests that prove their
equations and the figures that show them; the site is built from the source itself (:mod:`refvae.pages`).
"""

from refvae.pages import Figure, Page, Section

__all__ = ["PAGES"]

W = "wakesleep/rules.py"
T = "tests/test_wakesleep.py::"
_FD = (T + "test_updates_pass_the_finite_difference_check",)
_LOGP = (T + "test_log_joint_and_log_q_match_a_direct_computation",)

PAGES = (
    Page("wakesleep", "Helmholtz machines: wake, sleep, the adaptive prior, reweighted wake-sleep, exact steps", W, (
        Section(f"{W}::generative_logits", tests=_LOGP),
        Section(f"{W}::recognition_logits", tests=_LOGP),
        Section(f"{W}::recognize", tests=(T + "test_recognize_draws_each_layer_from_the_logits_of_the_layer_below",)),
        Section(f"{W}::dream", tests=(T + "test_sample_and_dream_shapes",)),
        Section(f"{W}::log_factorial_prior", tests=_LOGP),
        Section(f"{W}::log_joint", tests=_LOGP),
        Section(f"{W}::log_q", tests=_LOGP),
        Section(f"{W}::iw_bound", tests=(T + "test_importance_estimate_converges_to_the_exact_value",)),
        Section(f"{W}::delta_rule", tests=_FD + (T + "test_a_wrong_update_fails_the_check",)),
        Section(f"{W}::wake_step", tests=_FD),
        Section(f"{W}::sleep_step", tests=_FD),
        Section(f"{W}::wake_sleep_step", tests=_FD, figures=(Figure(
            "docs/results/wake_sleep_bars/kl_curves.png",
            "Wake-sleep on Hinton et al.'s bars: the exact KL(data || model) as training goes on "
            "(docs/wakesleep.md)."),)),
        Section(f"{W}::prior_step",
                tests=(T + "test_wake_prior_gradient_vanishes_when_the_prior_matches_the_top_samples",
                       T + "test_moment_step_matches_an_independent_computation")),
        Section(f"{W}::rws_step", tests=_FD),
        Section(f"{W}::resample", tests=(T + "test_rws_resampling_draws_rows_with_their_weights",)),
        Section(f"{W}::exact_step",
                tests=(T + "test_exact_step_in_blocks_equals_one_block_and_its_loss_is_the_likelihood",
                       T + "test_exact_training_reaches_a_stationary_point_with_the_prior_at_the_aggregate"),
                figures=(Figure("docs/results/wake_sleep_bars_exact/kl_curves.png",
                                "Exact maximum likelihood on the bars, beside wake-sleep."),)),
        Section(f"{W}::exact_step_fast",
                tests=(T + "test_exact_step_in_blocks_equals_one_block_and_its_loss_is_the_likelihood",)),
    )),
)
