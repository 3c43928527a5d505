"""Plots: every function writes a real PNG, handles the edge cases it promises, and refuses bad shapes."""

import numpy as np
import pytest

from refvae import plots
from refvae.vae import plots as vae_plots

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 1000


@pytest.mark.parametrize("history", [
    {"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5]},
    {"epoch": [1, 2], "train_loss": [3.0, 2.0], "val_loss": [None, None], "seconds": [0.1, 0.1]},
    {"epoch": [1, 2], "train_loss": [3.0, 2.0], "val_loss": [2.5, None], "train_rec": [2.5, 1.8],
     "train_kl": [0.5, 0.2], "mismatch_kl": [1.0, 0.5], "mismatch_kl_full": [1.2, 0.6], "active_units": [3, 4],
     "custom": [0.1, 0.2]},
], ids=["minimal", "no-validation", "every-panel"])
def test_training_curves(history, tmp_path):
    assert _is_png(plots.plot_training_curves(history, tmp_path / "sub" / "c.png"))


def test_image_plots(tmp_path, host_rng):
    images = host_rng.random((23, 784))
    assert _is_png(plots.plot_image_grid(images, tmp_path / "g.png", title="t"))
    assert _is_png(plots.plot_image_grid(host_rng.random((5, 16)), tmp_path / "bars.png", image_shape=(4, 4)))
    assert _is_png(plots.plot_reconstructions(images[:13], images[:13], tmp_path / "r.png"))
    assert _is_png(plots.plot_weights(host_rng.normal(size=(784, 30)), tmp_path / "w.png"))
    with pytest.raises(ValueError, match=r"shape \(n, 784\).*got \(3, 700\)"):
        plots.plot_image_grid(np.zeros((3, 700)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="differ in shape"):
        plots.plot_reconstructions(images[:3], images[:4], tmp_path / "bad.png")


@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("with_labels", [True, False])
def test_latent_scatter(d, with_labels, tmp_path, host_rng):
    z = host_rng.normal(size=(200, d))
    labels = host_rng.integers(0, 10, 200) if with_labels else None
    assert _is_png(vae_plots.plot_latent_scatter(z, labels, tmp_path / "z.png"))


def test_posterior_stats_and_histograms(tmp_path, host_rng):
    mu, logvar = host_rng.normal(size=(100, 6)), host_rng.normal(size=(100, 6))
    assert _is_png(vae_plots.plot_posterior_stats(mu, logvar, tmp_path / "p.png"))
    with pytest.raises(ValueError, match="same|shape"):
        vae_plots.plot_posterior_stats(mu, logvar[:, :5], tmp_path / "bad.png")
    assert _is_png(plots.plot_histogram_pairs(host_rng.random(50), host_rng.random(60), tmp_path / "h.png",
                                              labels=("aggregate", "model")))


def test_aggregate_plots(tmp_path, host_rng, numpy_backend):
    import refvae

    model = refvae.GaussianVAE(6, 3, hidden=(5,), seed=0)
    report = refvae.prior_mismatch(refvae.aggregate_posterior(model, host_rng.random((40, 6))))
    assert _is_png(vae_plots.plot_aggregate_vs_prior(report, tmp_path / "a.png"))
    assert _is_png(vae_plots.plot_correlation(report.correlation, tmp_path / "c.png"))
    assert _is_png(vae_plots.plot_aggregate_histograms(host_rng.normal(size=(300, 3)), [2, 0], tmp_path / "h.png",
                                                             kls=report.kl))
    assert _is_png(vae_plots.plot_series({"a": [3, 2, 1], "b": [1, 2, 3]}, tmp_path / "s.png",
                                               spread={"a": [0.1, 0.1, 0.2]}, logy=True))


def test_firing_rates(tmp_path, host_rng):
    layers = [(host_rng.random(8), host_rng.random(8)), (host_rng.random(1), host_rng.random(1))]
    assert _is_png(plots.plot_firing_rates(layers, tmp_path / "f.png"))
    with pytest.raises(ValueError, match="one .aggregate, generative. pair per hidden layer"):
        plots.plot_firing_rates([], tmp_path / "e.png")
    with pytest.raises(ValueError, match=r"differ in length \(8 and 7\)"):
        plots.plot_firing_rates([(host_rng.random(8), host_rng.random(7))], tmp_path / "e.png")
    with pytest.raises(ValueError, match="non-finite"):
        plots.plot_firing_rates([(np.array([0.5, np.nan]), np.array([0.5, 0.5]))], tmp_path / "e.png")


def test_image_grid_with_a_colour_scale(tmp_path, host_rng):
    from matplotlib.image import imread

    images = host_rng.random((6, 16))
    plain = imread(plots.plot_image_grid(images, tmp_path / "plain.png", image_shape=(4, 4), ncols=3))
    scaled = imread(plots.plot_image_grid(images, tmp_path / "scale.png", image_shape=(4, 4), ncols=3,
                                          colorbar="P(x = 1)"))
    assert scaled.shape[1] > plain.shape[1]                 # room for the colour bar beside the grid


def test_a_plot_that_fails_midway_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    """A full disk while the PNG is written: the previous plot stays whole, nothing truncated is left."""
    from matplotlib.figure import Figure

    history = {"epoch": [1, 2], "train_loss": [3.0, 2.0]}
    path = plots.plot_training_curves(history, tmp_path / "c.png")
    before = path.read_bytes()

    def full_disk(self, f, **kwargs):
        f.write(PNG + b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full_disk)
    with pytest.raises(OSError, match="No space left"):
        plots.plot_training_curves(history, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]


@pytest.mark.parametrize("epochs", [1, 2, 12])
def test_training_curves_keep_each_label_beside_its_own_panel(epochs):
    """The RBM's long loss label (and every panel's) fits the height of its panel once drawn, so it never runs
    into the next; the epoch axis has whole epochs only, even for a one-epoch run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from refvae.app import install
    from refvae.plots.curves import training_curves_figure

    install("program")                                   # the models' panels (the RBM's hidden units)
    history = {"epoch": list(range(1, epochs + 1)), "train_loss": [-1.3 - 0.01 * i for i in range(epochs)],
               "aggregate_posterior_mean": [0.49] * epochs,
               "reconstruction_error": [50.0 - i for i in range(epochs)]}
    long_label = "F(data) - F(model), nats per example (the training signal, not the likelihood)"
    fig = training_curves_figure(history, title="RBM training", ylabel=long_label)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = fig.axes
    assert len(axes) == 3
    for ax in axes:
        label = ax.yaxis.label
        if not label.get_text():
            continue
        box, panel = label.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert box.y0 >= panel.y0 - 2 and box.y1 <= panel.y1 + 2, label.get_text()
    ticks = axes[-1].get_xticks()
    visible = [t for t in ticks if axes[-1].get_xlim()[0] <= t <= axes[-1].get_xlim()[1]]
    assert visible and all(float(t).is_integer() for t in visible)
