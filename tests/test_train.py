"""fit and the optimisers: learning happens, resuming is exact, failures stop cleanly."""

import math

import numpy as np
import pytest

import refvae
from refvae import SGD, Adam, GaussianVAE, TrainingError, fit


def _toy_data(host_rng, n=60, d=8):
    """Two prototypes with pixel noise: easy to learn."""
    protos = np.array([[0.9] * (d // 2) + [0.1] * (d - d // 2), [0.1] * (d // 2) + [0.9] * (d - d // 2)])
    return np.clip(protos[host_rng.integers(0, 2, n)] + host_rng.normal(0, 0.05, (n, d)), 0, 1).astype(np.float32)


def test_training_reduces_the_loss(backend, host_rng):
    X = _toy_data(host_rng)
    model = GaussianVAE(8, 2, hidden=(16,), seed=0)
    history = fit(model, X, epochs=15, batch_size=16, optimizer=Adam(1e-2), binarize="dynamic", X_val=X,
                  progress=False)
    assert history["epoch"] == list(range(1, 16))
    assert history["train_loss"][-1] < history["train_loss"][0] - 0.5
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert len(history["seconds"]) == 15 and all(s > 0 for s in history["seconds"])
    # the two ELBO terms are recorded separately and add up to the loss
    for i in range(15):
        assert history["train_rec"][i] + history["train_kl"][i] == pytest.approx(history["train_loss"][i], rel=1e-5)


def test_resume_continues_exactly(numpy_backend, tmp_path, host_rng):
    X = _toy_data(host_rng)
    settings = dict(batch_size=16, seed=3, binarize="dynamic", progress=False)
    full = GaussianVAE(8, 2, hidden=(16,), seed=0)
    h_full = fit(full, X, epochs=4, optimizer=Adam(1e-2), checkpoint=tmp_path / "full.npz", **settings)

    part = GaussianVAE(8, 2, hidden=(16,), seed=0)
    fit(part, X, epochs=2, optimizer=Adam(1e-2), checkpoint=tmp_path / "part.npz", **settings)
    resumed = GaussianVAE(8, 2, hidden=(16,), seed=0)  # a fresh process would start like this
    h_resumed = fit(resumed, X, epochs=4, optimizer=Adam(1e-2), checkpoint=tmp_path / "part.npz", resume=True,
                    **settings)
    assert h_resumed["train_loss"] == h_full["train_loss"]
    for k, v in full.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)


def test_binarize_none_is_the_command_lines_word_for_none(numpy_backend, tmp_path, host_rng):
    """``binarize="none"`` (the command line's ``--binarize none``) trains exactly as ``binarize=None``, and a run
    started with one resumes with the other."""
    X = _toy_data(host_rng)
    settings = dict(batch_size=16, seed=3, progress=False)
    word = GaussianVAE(8, 2, hidden=(16,), seed=0)
    h_word = fit(word, X, epochs=2, optimizer=Adam(1e-2), binarize="none", checkpoint=tmp_path / "c.npz", **settings)
    plain = GaussianVAE(8, 2, hidden=(16,), seed=0)
    assert fit(plain, X, epochs=2, optimizer=Adam(1e-2), binarize=None, **settings)["train_loss"] == h_word["train_loss"]
    for k, v in plain.params.items():
        np.testing.assert_array_equal(word.params[k], v)
    resumed = GaussianVAE(8, 2, hidden=(16,), seed=0)
    fit(resumed, X, epochs=3, optimizer=Adam(1e-2), binarize=None, checkpoint=tmp_path / "c.npz", resume=True,
        **settings)
    with pytest.raises(ValueError, match="binarize must be one of"):
        fit(GaussianVAE(8, 2, hidden=(16,)), X, epochs=1, optimizer=Adam(), binarize="None", **settings)


def test_resume_refuses_a_different_run(numpy_backend, tmp_path, host_rng):
    X = _toy_data(host_rng)
    fit(GaussianVAE(8, 2, hidden=(16,)), X, epochs=1, batch_size=16, optimizer=Adam(), checkpoint=tmp_path / "c.npz",
        progress=False)
    with pytest.raises(refvae.CheckpointError, match="config"):
        fit(GaussianVAE(8, 3, hidden=(16,)), X, epochs=2, batch_size=16, optimizer=Adam(),
            checkpoint=tmp_path / "c.npz", resume=True, progress=False)
    with pytest.raises(refvae.CheckpointError, match="trained with"):
        fit(GaussianVAE(8, 2, hidden=(16,)), X, epochs=2, batch_size=8, optimizer=Adam(),
            checkpoint=tmp_path / "c.npz", resume=True, progress=False)
    with pytest.raises(refvae.CheckpointError, match="Adam.*SGD"):
        fit(GaussianVAE(8, 2, hidden=(16,)), X, epochs=2, batch_size=16, optimizer=SGD(0.1),
            checkpoint=tmp_path / "c.npz", resume=True, progress=False)


class _ExplodesAt(GaussianVAE):
    """A VAE whose loss turns NaN at a given call (a stand-in for a diverging run)."""

    def __init__(self, *args, nan_at=5, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.nan_at = 0, nan_at

    def loss_and_grads(self, x, eps=None, rng=None):
        loss, grads = super().loss_and_grads(x, eps, rng=rng)
        self.calls += 1
        return (math.nan if self.calls >= self.nan_at else loss), grads


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_checkpoint(numpy_backend, tmp_path, host_rng):
    X = _toy_data(host_rng, n=64)  # 4 steps per epoch at batch 16
    model = _ExplodesAt(8, 2, hidden=(16,), nan_at=6)  # epoch 2, step 2
    path = tmp_path / "c.npz"
    with pytest.raises(TrainingError, match=r"epoch 2, step 2 of 4.*last good state"):
        fit(model, X, epochs=3, batch_size=16, optimizer=Adam(), checkpoint=path, progress=False)
    saved = GaussianVAE.load(path)  # the checkpoint of epoch 1, intact and loadable
    arrays, meta = refvae.checkpoint.load_checkpoint(path)
    assert meta["training"]["epochs_done"] == 1
    assert all(np.all(np.isfinite(v)) for v in saved.params.values())


@pytest.mark.parametrize("bad, message", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(binarize="sometimes"), "binarize must be one of"),
])
def test_bad_fit_arguments(numpy_backend, bad, message, host_rng):
    args = dict(epochs=1, batch_size=8, optimizer=Adam(), progress=False)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        fit(GaussianVAE(8, 2, hidden=(4,)), _toy_data(host_rng), **args)


def test_fit_refuses_bad_data(backend):
    with pytest.raises(refvae.DataError, match="NaN"):
        fit(GaussianVAE(4, 2, hidden=(4,)), np.full((5, 4), np.nan), epochs=1, batch_size=2, optimizer=Adam(),
            progress=False)
    with pytest.raises(refvae.DataError, match="0 rows"):
        fit(GaussianVAE(4, 2, hidden=(4,)), np.zeros((0, 4)), epochs=1, batch_size=2, optimizer=Adam(),
            progress=False)


def test_static_binarisation_is_one_fixed_sample(numpy_backend, host_rng):
    seen = []

    class Recorder(GaussianVAE):
        def loss_and_grads(self, x, eps=None, rng=None):
            seen.append(np.array(x))
            return super().loss_and_grads(x, eps, rng=rng)

    X = np.full((4, 6), 0.5, np.float32)
    fit(Recorder(6, 2, hidden=(4,)), X, epochs=2, batch_size=4, optimizer=Adam(), binarize="static", progress=False)
    assert set(np.unique(seen[0])) <= {0.0, 1.0}
    # the same examples (in shuffled order) in both epochs
    assert sorted(map(tuple, seen[0])) == sorted(map(tuple, seen[1]))
    seen.clear()
    fit(Recorder(6, 2, hidden=(4,)), X, epochs=2, batch_size=4, optimizer=Adam(), binarize="dynamic", progress=False)
    assert sorted(map(tuple, seen[0])) != sorted(map(tuple, seen[1]))


def test_every_example_is_seen_once_per_epoch_including_the_last_partial_batch(backend):
    """n = 10 at batch 4: batches of 4, 4 and 2 each epoch, covering every (distinct) row exactly once."""
    n, batch_size = 10, 4
    # distinct rows (the first column tells them apart), exactly representable in float32
    X = np.tile(np.arange(n, dtype=np.float32)[:, None] / 16.0, (1, 6))
    X[:, 1:] = 0.5
    batches, epochs = [], []

    class Recorder(GaussianVAE):
        def loss_and_grads(self, x, eps=None, rng=None):
            batches.append(backend.to_numpy(x, copy=True))
            return super().loss_and_grads(x, eps, rng=rng)

    def end_of_epoch(model, history):
        epochs.append(list(batches))
        batches.clear()

    fit(Recorder(6, 2, hidden=(4,)), X, epochs=2, batch_size=batch_size, optimizer=Adam(), progress=False,
        callbacks=(end_of_epoch,))
    assert len(epochs) == 2 and not batches
    for seen in epochs:
        assert [b.shape[0] for b in seen] == [4, 4, 2]
        assert sum(b.shape[0] for b in seen) == n
        rows = np.concatenate(seen)
        np.testing.assert_array_equal(np.sort(rows[:, 0]), X[:, 0])      # each example exactly once
        np.testing.assert_array_equal(rows[np.argsort(rows[:, 0])], X)   # and unchanged
    # the shuffle differs between epochs (a fixed order would hide a missing reshuffle)
    assert not np.array_equal(np.concatenate(epochs[0])[:, 0], np.concatenate(epochs[1])[:, 0])


def test_adam_matches_textbook_update(backend, host_rng):
    """Three steps of the folded update equal Kingma & Ba's Algorithm 1 with m_hat, v_hat."""
    p0 = host_rng.normal(size=(3, 2))
    gs = [host_rng.normal(size=(3, 2)) for _ in range(3)]
    params = {"w": backend.asarray(p0)}
    opt = Adam(lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    p, m, v = p0.copy(), 0, 0
    for t, g in enumerate(gs, start=1):
        opt.step(params, {"w": backend.asarray(g)})
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        p = p - 0.1 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-3)
    np.testing.assert_allclose(backend.to_numpy(params["w"]), p, rtol=1e-12)


def test_adam_loads_the_papers_moments_from_older_checkpoints(numpy_backend, host_rng):
    """A state holding the paper's m and v (slots "m", "v") continues exactly as the textbook update would."""
    p0, g1, g2 = (host_rng.normal(size=4) for _ in range(3))
    b1, b2, lr, eps = 0.8, 0.9, 0.1, 1e-3
    m, v = (1 - b1) * g1, (1 - b2) * g1 * g1                                  # the paper's moments after step 1
    old_state = {"meta": {"t": 1, "lr": lr}, "arrays": {"m/w": m, "v/w": v}}
    opt = Adam(lr=lr, betas=(b1, b2), eps=eps)
    opt.load_state_dict(old_state)
    params = {"w": p0.copy()}
    opt.step(params, {"w": g2})
    m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2 * g2
    expected = p0 - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)
    assert set(opt.state_dict()["arrays"]) == {"m_sum/w", "v_sum/w"}


def test_sgd_momentum_and_sign(backend):
    """Optimisers subtract the gradient: on f(w) = w^2 / 2 (gradient w) the iterate shrinks."""
    params = {"w": backend.asarray(np.array([1.0]))}
    opt = SGD(lr=0.1, momentum=0.5)
    opt.step(params, {"w": params["w"] * 1.0})          # v = 1,            w = 0.9
    opt.step(params, {"w": params["w"] * 1.0})          # v = 0.5 + 0.9,    w = 0.9 - 0.14
    assert backend.to_numpy(params["w"])[0] == pytest.approx(0.76, rel=1e-12)


def test_optimiser_state_round_trip(numpy_backend, host_rng):
    params = {"w": host_rng.normal(size=4)}
    opt = Adam()
    opt.step(params, {"w": np.ones(4)})
    state = opt.state_dict()
    other = Adam()
    other.load_state_dict(state)
    p1, p2 = {"w": params["w"].copy()}, {"w": params["w"].copy()}
    opt.step(p1, {"w": np.ones(4)})
    other.step(p2, {"w": np.ones(4)})
    np.testing.assert_array_equal(p1["w"], p2["w"])


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan")])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="learning rate"):
        Adam(lr)


def test_fit_checks_values_once_not_per_step(numpy_backend, host_rng, monkeypatch):
    """fit validates the data once; the training steps check shapes only (no per-step device sync)."""
    import refvae.validation as validation

    calls = {"value_checks": 0}
    original_isfinite = np.isfinite

    def counting_isfinite(x, *args, **kwargs):
        if getattr(x, "shape", None) in ((64, 8), (8, 8)):       # the data or a batch (no parameter has these shapes:
            calls["value_checks"] += 1                           # fit checks the parameters once per epoch)
        return original_isfinite(x, *args, **kwargs)

    monkeypatch.setattr(np, "isfinite", counting_isfinite)
    X = _toy_data(host_rng, n=64)
    fit(GaussianVAE(8, 2, hidden=(4,)), X, epochs=2, batch_size=8, optimizer=Adam(), progress=False)
    assert calls["value_checks"] == 1  # X once (per step, 16 steps would give 16 more)
    assert not validation._VALUES_CHECKED  # the context is left cleanly
    with pytest.raises(refvae.DataError, match="NaN"):  # outside fit, single calls still check values
        GaussianVAE(8, 2, hidden=(4,)).loss_and_grads(np.full((2, 8), np.nan))


def test_fit_refuses_a_missing_optimizer(numpy_backend, host_rng):
    with pytest.raises(TypeError, match="optimizer with step.*refvae.Adam"):
        fit(GaussianVAE(8, 2, hidden=(4,)), _toy_data(host_rng, n=16), epochs=1, batch_size=8, optimizer=None,
            progress=False)


def test_resume_with_fewer_epochs_than_done_says_so(numpy_backend, host_rng, tmp_path):
    X = _toy_data(host_rng, n=16)
    path = tmp_path / "c.npz"
    fit(GaussianVAE(8, 2, hidden=(4,)), X, epochs=3, batch_size=8, optimizer=Adam(), checkpoint=path, progress=False)
    with pytest.raises(TrainingError, match="already holds 3 epochs, more than the 2 asked for"):
        fit(GaussianVAE(8, 2, hidden=(4,)), X, epochs=2, batch_size=8, optimizer=Adam(), checkpoint=path,
            resume=True, progress=False)


def test_a_diverging_run_names_only_checkpoints_that_exist(numpy_backend, host_rng, tmp_path):
    X = _toy_data(host_rng, n=16)
    with pytest.raises(TrainingError, match="no epoch had completed, so there is no checkpoint yet"):
        fit(GaussianVAE(8, 2, hidden=(4,)), X, epochs=2, batch_size=8, optimizer=SGD(1e30),
            checkpoint=tmp_path / "never.npz", progress=False)
    assert not (tmp_path / "never.npz").exists()


def test_verbose_prints_epoch_lines_without_bars(numpy_backend, host_rng, capsys):
    fit(GaussianVAE(8, 2, hidden=(4,)), _toy_data(host_rng, n=16), epochs=2, batch_size=8, optimizer=Adam(),
        progress=False, verbose=True)
    out = capsys.readouterr()
    assert "epoch 1/2: train loss" in out.out + out.err and "epoch 2/2" in out.out + out.err


class _ProtocolModel(refvae.checkpoint.Checkpointable):
    """The smallest model that uses every part of fit's protocol: a generator passed in, training state created
    at a new run's start, and a target the trainer writes after the optimiser's step."""

    def __init__(self, seed=0):
        B = refvae.get_backend()
        self.params = {"w": B.zeros((2,), "float64"), "t": B.zeros((1,), "float64")}
        self.rng = B.rng(seed)                        # must never be used by fit, nor replaced
        self.state_made, self.draws, self.seed = [], [], seed

    config = property(lambda self: {"seed": self.seed})

    def init_training_state(self, batch_size, rng):
        self.state_made.append((batch_size, float(rng.uniform((1,), "float64")[0])))

    def loss_grads_and_targets(self, x, rng=None):
        draw = float(rng.uniform((1,), "float64")[0])
        self.draws.append(draw)
        w = self.params["w"]
        return float(refvae.get_backend().xp.sum(w * w)), {"w": 2.0 * w - 1.0, "t": 0.0 * self.params["t"]}, \
            {"t": self.params["t"] + draw}

    def loss_and_grads(self, x, rng=None):
        loss, grads, _ = self.loss_grads_and_targets(x, rng)
        return loss, grads

    def checkpoint_arrays(self):
        return {f"model/{k}": refvae.get_backend().to_numpy(v, copy=True) for k, v in self.params.items()}

    def set_params(self, new):
        self.params = {k: refvae.get_backend().asarray(np.array(v)) for k, v in new.items()}


def test_fit_passes_generators_creates_state_and_writes_targets(numpy_backend, tmp_path):
    X = np.zeros((6, 3))
    model = _ProtocolModel()
    before = model.rng
    untouched = np.array(numpy_backend.rng(0).uniform((3,), "float64"))
    fit(model, X, epochs=2, batch_size=4, optimizer=SGD(0.1), progress=False, checkpoint=tmp_path / "c.npz")
    assert model.rng is before                                     # fit assigns no generator
    np.testing.assert_array_equal(np.array(model.rng.uniform((3,), "float64")), untouched)   # and draws none from it
    assert len(model.state_made) == 1 and model.state_made[0][0] == 4    # once, with the batch size
    assert len(model.draws) == 4 and len(set(model.draws)) == 4          # 2 steps x 2 epochs, fresh numbers
    # the target is written after each step: t = the sum of the draws, while its own gradient is zero
    np.testing.assert_allclose(model.params["t"], [sum(model.draws)], rtol=1e-12)
    # the same run again draws the same numbers; resuming creates no state and continues the stream exactly
    again = _ProtocolModel()
    fit(again, X, epochs=1, batch_size=4, optimizer=SGD(0.1), progress=False, checkpoint=tmp_path / "r.npz")
    fit(again, X, epochs=2, batch_size=4, optimizer=SGD(0.1), progress=False, checkpoint=tmp_path / "r.npz",
        resume=True)
    assert again.draws == model.draws and len(again.state_made) == 1


class _BreaksAtTheLastStep(_ExplodesAt):
    """A VAE whose last step of its second epoch writes NaN into a parameter while its loss stays finite."""

    def loss_and_grads(self, x, eps=None, rng=None):
        loss, grads = GaussianVAE.loss_and_grads(self, x, eps, rng=rng)
        self.calls += 1
        if self.calls == self.nan_at:
            grads["decoder.logits.b"] = grads["decoder.logits.b"] * np.nan
        return loss, grads


def test_a_diverged_state_is_never_saved_as_good(numpy_backend, tmp_path, host_rng):
    """The loss of the epoch's last step is finite but its update is not: the run stops at the end of the epoch,
    and the checkpoint keeps the last finite state (epoch 1)."""
    X = _toy_data(host_rng, n=64)                                   # 4 steps per epoch at batch 16
    path = tmp_path / "c.npz"
    with pytest.raises(TrainingError, match=r"epoch 2 ended with non-finite or diverging values \(the parameters\).*last good state"):
        fit(_BreaksAtTheLastStep(8, 2, hidden=(16,), nan_at=8), X, epochs=3, batch_size=16, optimizer=SGD(0.01),
            checkpoint=path, progress=False)
    _, meta = refvae.checkpoint.load_checkpoint(path)
    assert meta["training"]["epochs_done"] == 1
    assert all(np.all(np.isfinite(v)) for v in GaussianVAE.load(path).params.values())


def test_a_non_finite_validation_loss_stops_the_run(numpy_backend, tmp_path, host_rng):
    class NanValidation(GaussianVAE):
        def loss(self, x, eps=None, rng=None):
            return math.nan

    X = _toy_data(host_rng, n=32)
    with pytest.raises(TrainingError, match=r"epoch 1 ended with non-finite or diverging values \(val_loss\)"):
        fit(NanValidation(8, 2, hidden=(16,)), X, epochs=2, batch_size=16, optimizer=Adam(), X_val=X,
            checkpoint=tmp_path / "c.npz", progress=False)
    assert not (tmp_path / "c.npz").exists()


def test_resuming_a_finished_run_for_the_same_epochs_returns_its_history(numpy_backend, tmp_path, host_rng):
    X = _toy_data(host_rng, n=32)
    path = tmp_path / "c.npz"
    model = GaussianVAE(8, 2, hidden=(4,))
    done = fit(model, X, epochs=2, batch_size=16, optimizer=Adam(), checkpoint=path, progress=False)
    again = GaussianVAE(8, 2, hidden=(4,))
    again.params["encoder.0.W"][...] += 1.0                           # not the saved state until it is restored
    history = fit(again, X, epochs=2, batch_size=16, optimizer=Adam(), checkpoint=path, resume=True, progress=False)
    assert history["train_loss"] == done["train_loss"] and history["epoch"] == [1, 2]
    for name, p in model.params.items():
        np.testing.assert_array_equal(again.params[name], p)                  # restored, not trained further


def test_validation_data_are_binarised_with_their_own_stream(numpy_backend):
    """X_val = X, both binarised statically: the validation draw is not the training draw (its own stream)."""
    seen = {"train": [], "val": []}

    class Recorder(GaussianVAE):
        def loss_and_grads(self, x, eps=None, rng=None):
            seen["train"].append(np.array(x))
            return super().loss_and_grads(x, eps, rng=rng)

        def loss(self, x, eps=None, rng=None):
            seen["val"].append(np.array(x))
            return super().loss(x, eps, rng=rng)

    X = np.full((16, 8), 0.5, np.float32)
    fit(Recorder(8, 2, hidden=(4,)), X, epochs=1, batch_size=16, optimizer=Adam(), binarize="static", X_val=X,
        progress=False)
    train_rows = sorted(map(tuple, seen["train"][0]))
    val_rows = sorted(map(tuple, seen["val"][0]))
    assert set(np.unique(seen["val"][0])) <= {0.0, 1.0}
    assert train_rows != val_rows


def test_resume_is_exact_with_a_decaying_learning_rate(numpy_backend, tmp_path, host_rng):
    """A schedule that changes optimizer.lr after every epoch (the Helmholtz command's --lr-decay): the rate reached
    is saved and restored, so the resumed epochs run at it and end where the uninterrupted run ends."""
    X = _toy_data(host_rng)
    settings = dict(batch_size=16, seed=3, progress=False)

    def run(epochs, path, resume=False):
        model, opt = GaussianVAE(8, 2, hidden=(16,), seed=0), SGD(0.2, momentum=0.5)

        def decay(model, history):
            opt.lr = 0.2 * (1.0 - len(history["epoch"]) / 4)

        fit(model, X, epochs=epochs, optimizer=opt, checkpoint=path, resume=resume, callbacks=(decay,), **settings)
        return model, opt

    full, full_opt = run(4, tmp_path / "full.npz")
    run(2, tmp_path / "part.npz")
    resumed, resumed_opt = run(4, tmp_path / "part.npz", resume=True)
    assert resumed_opt.lr == full_opt.lr == 0.0
    for k, v in full.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)


@pytest.mark.parametrize("change, message", [
    (dict(optimizer=SGD(0.05, momentum=0.9)), r"optimizer lr=0\.1 \(this run: 0\.05\)"),
    (dict(optimizer=SGD(0.1, momentum=0.5)), r"optimizer momentum=0\.9 \(this run: 0\.5\)"),
    (dict(X="other"), r"data=\[.*\] \(this run: \[.*\]\)"),
    (dict(seed=4), r"seed=3 \(this run: 4\)"),
])
def test_resume_refuses_every_changed_setting_and_names_it(numpy_backend, tmp_path, host_rng, change, message):
    X = _toy_data(host_rng)
    other = np.clip(X[::-1] * 0.5 + 0.25, 0.0, 1.0)                      # the same shape, other data
    args = dict(X=X, epochs=1, batch_size=16, seed=3, optimizer=SGD(0.1, momentum=0.9), progress=False,
                checkpoint=tmp_path / "c.npz")
    fit(GaussianVAE(8, 2, hidden=(16,)), **args)
    args.update(change, epochs=2, resume=True)
    if isinstance(args["X"], str):
        args["X"] = other
    with pytest.raises(refvae.CheckpointError, match=message):
        fit(GaussianVAE(8, 2, hidden=(16,)), **args)


def test_a_huge_finite_loss_is_divergence(numpy_backend, tmp_path, host_rng):
    """A loss of 1e31 nats per example is finite but no model learns there: the run stops as for NaN."""
    class Huge(_ExplodesAt):
        def loss_and_grads(self, x, eps=None, rng=None):
            loss, grads = super().loss_and_grads(x, eps, rng=rng)
            return (1e31 if math.isnan(loss) else loss), grads

    X = _toy_data(host_rng, n=64)
    with pytest.raises(TrainingError, match=r"1e\+31 at epoch 2, step 2 of 4 \(the run diverged\)"):
        fit(Huge(8, 2, hidden=(16,), nan_at=6), X, epochs=3, batch_size=16, optimizer=Adam(), progress=False,
            checkpoint=tmp_path / "c.npz")
    _, meta = refvae.checkpoint.load_checkpoint(tmp_path / "c.npz")
    assert meta["training"]["epochs_done"] == 1


def test_a_diverging_recorded_number_stops_the_run(numpy_backend, host_rng):
    """A diagnostic of 5.7e30 nats (the Helmholtz machine's KL when it diverged) stops the run at that epoch."""
    def huge_kl(model, history):
        history.setdefault("kl_data_model", []).append(5.7e30)

    with pytest.raises(TrainingError, match=r"epoch 1 ended with non-finite or diverging values \(kl_data_model\)"):
        fit(GaussianVAE(8, 2, hidden=(4,)), _toy_data(host_rng), epochs=2, batch_size=16, optimizer=Adam(),
            progress=False, callbacks=(huge_kl,))


def test_fit_records_the_options_it_is_given_and_says_where_it_resumes(numpy_backend, host_rng, tmp_path, capsys):
    """``options`` (how the run was asked for) is saved with every checkpoint, verbatim; a resumed verbose run says
    at which epoch it goes on; options JSON cannot hold are refused before the first epoch."""
    X = _toy_data(host_rng)
    path = tmp_path / "ck.npz"
    options = {"dataset": "/data/mine.npy", "hidden": [8, 4], "lr": 0.01, "test_size": None}
    kwargs = dict(batch_size=16, optimizer=Adam(1e-3), checkpoint=path, progress=False, options=options)
    fit(GaussianVAE(8, 2, hidden=(8,)), X, epochs=1, **kwargs)
    assert refvae.checkpoint.load_checkpoint(path)[1]["training"]["options"] == options
    capsys.readouterr()
    fit(GaussianVAE(8, 2, hidden=(8,)), X, epochs=3, resume=True, verbose=True, **kwargs)
    assert f"resuming {path} at epoch 2 of 3" in capsys.readouterr().out
    for bad in ({"x": object()}, {"lr": float("nan")}, ["lr", 0.1]):
        with pytest.raises(TypeError, match="options must be a dict of JSON values"):
            fit(GaussianVAE(8, 2, hidden=(8,)), X, epochs=1, batch_size=16, optimizer=Adam(1e-3), progress=False,
                options=bad)
