"""Checkpoints: round trips, atomic writes, no pickle, and clear errors for every way they go wrong."""

import os

import numpy as np
import pytest

import refvae
from refvae import CheckpointError, GaussianVAE
from refvae.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_keeps_parameters_and_loss(backend, tmp_path, host_rng):
    model = GaussianVAE(6, 3, hidden=(5,), likelihood="gaussian", activation="tanh", seed=3, dtype="float64")
    path = model.save(tmp_path / "m.npz")
    again = GaussianVAE.load(path)
    assert again.config == model.config
    x, eps = host_rng.normal(size=(4, 6)), host_rng.normal(size=(4, 3))
    assert again.loss(x, eps) == model.loss(x, eps)
    generic = refvae.load(path)  # rebuilds any kind of model
    assert isinstance(generic, GaussianVAE)


def test_checkpoint_is_read_without_pickle(tmp_path):
    save_checkpoint(tmp_path / "c.npz", {"a": np.arange(3)}, {"kind": "Nothing"})
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert set(z.files) == {"a", "__meta__"}


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        GaussianVAE.load(tmp_path / "nope.npz")


def test_truncated_checkpoint(numpy_backend, tmp_path):
    path = GaussianVAE(6, 2, hidden=(4,)).save(tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        GaussianVAE.load(path)


def test_foreign_files(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match="is not a refvae checkpoint: it is a text file, not an .npz archive"):
        refvae.load(tmp_path / "text.npz")
    np.savez(tmp_path / "plain.npz", w=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a refvae checkpoint"):
        refvae.load(tmp_path / "plain.npz")
    save_checkpoint(tmp_path / "other.npz", {}, {"kind": "SomethingElse", "config": {}})
    with pytest.raises(CheckpointError, match="holds a SomethingElse, not a GaussianVAE"):
        GaussianVAE.load(tmp_path / "other.npz")
    with pytest.raises(CheckpointError, match="kind 'SomethingElse'"):
        refvae.load(tmp_path / "other.npz")


def test_checkpoint_of_another_architecture(numpy_backend, tmp_path):
    path = GaussianVAE(6, 2, hidden=(4,)).save(tmp_path / "m.npz")
    arrays, meta = load_checkpoint(path)
    meta["config"]["hidden"] = [5]  # config and arrays disagree
    save_checkpoint(tmp_path / "bad.npz", arrays, {k: v for k, v in meta.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="does not describe a valid GaussianVAE.*shapes"):
        GaussianVAE.load(tmp_path / "bad.npz")
    model = GaussianVAE(6, 3, hidden=(4,))
    with pytest.raises(ValueError, match="shapes do not match"):
        model.set_params(GaussianVAE.load(path).params)


def test_failed_write_leaves_previous_checkpoint_intact(numpy_backend, tmp_path, monkeypatch):
    model = GaussianVAE(6, 2, hidden=(4,), seed=0)
    path = model.save(tmp_path / "m.npz")
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        GaussianVAE(6, 2, hidden=(4,), seed=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind
    assert os.path.getsize(path) == len(before)


def test_a_checkpoint_with_non_finite_parameters_is_refused(numpy_backend, tmp_path):
    model = refvae.GaussianVAE(6, 2, hidden=(4,))
    model.params["encoder.0.W"][0, 0] = np.nan
    path = model.save(tmp_path / "nan.npz")
    with pytest.raises(refvae.CheckpointError, match=r"non-finite parameters \(encoder.0.W\).*earlier checkpoint"):
        refvae.load(path)


def test_float64_values_beyond_float32_range_are_refused_for_a_float32_model(numpy_backend, tmp_path):
    """1e39 is finite in the float64 file but inf once cast to the model's float32: refused, not loaded as inf."""
    from refvae.checkpoint import load_checkpoint, save_checkpoint

    path = refvae.GaussianVAE(6, 2, hidden=(4,)).save(tmp_path / "m.npz")
    arrays, meta = load_checkpoint(path)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    arrays["model/encoder.0.W"][0, 0] = 1e39
    save_checkpoint(tmp_path / "big.npz", arrays, meta)
    with pytest.raises(refvae.CheckpointError, match=r"beyond the range of the model's dtype \(float32\): encoder.0.W"):
        refvae.load(tmp_path / "big.npz")
    arrays["model/encoder.0.W"][0, 0] = 1e30                     # within float32's range: loads
    save_checkpoint(tmp_path / "ok.npz", arrays, meta)
    assert np.isfinite(refvae.load(tmp_path / "ok.npz").params["encoder.0.W"]).all()


def test_checkpoints_follow_the_umask(numpy_backend, tmp_path):
    old = os.umask(0o022)
    try:
        path = refvae.GaussianVAE(6, 2, hidden=(4,)).save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_a_subclass_is_saved_as_its_model_kind_without_any_installed_table(numpy_backend, monkeypatch, tmp_path):
    """kind_of does not depend on refvae.app.install having run: a subclass of GaussianVAE is a GaussianVAE."""
    from refvae import checkpoint

    monkeypatch.setattr(checkpoint, "_MODELS", {})

    class MyVAE(refvae.GaussianVAE):
        pass

    assert checkpoint.kind_of(MyVAE(6, 2, hidden=(4,))) == "GaussianVAE"
    path = MyVAE(6, 2, hidden=(4,)).save(tmp_path / "m.npz")
    assert type(refvae.GaussianVAE.load(path)) is refvae.GaussianVAE
