"""Sampling from the aggregate posterior: when does it give better samples than the prior, and by how much?

A VAE is trained as if its latent codes followed the prior p(z) = N(0, I); the codes of the data follow the
aggregate posterior q(z) = <q(z|x)>. Where the two differ, the decoder has been trained on q(z), so drawing z from
q(z) instead of p(z) should give better samples, and the more so the larger the mismatch. This measures it.

Runs (mnist-10k, the failure modes of examples/aggregate_vs_prior.py), each over several seeds:
  baseline        784-400-20, Adam 1e-3
  small decoder   the same encoder, a decoder 20-8-784
  small latent    z_dim = 2
  large lr        Adam 1e-2

After epochs 1, 3, 10 and 30 of each run, 2,000 decoder means are drawn with z from each source:
  prior               z ~ N(0, I)
  aggregate           z ~ N(m, diag s^2), the aggregate's moments on the training images
  aggregate-full      z ~ N(m, C), its full covariance
  aggregate-mixture   the exact aggregate: a training image x_i at random, z ~ q(z|x_i)
and, as a reference for what the mixture can reach, the reconstructions of 2,000 training images (the mixture's
limit as every q(z|x_i) narrows to its mean). Each set is compared with the 2,000 test images by the Frechet
distance and improved precision/recall (k = 3), on two fixed feature maps: the shipped classifier's 64
penultimate features (refvae.features.classifier_features) and the top 50 principal components of the training
images. Beside each row: the mismatch, KL of the moment-matched Gaussian (diagonal and full) and of the exact
mixture (refvae.aggregate_kl), on the training images.

    python examples/aggregate_sampling.py                  # 4 runs x 3 seeds x 30 epochs (about 8 minutes on 2 cores)
    python examples/aggregate_sampling.py --quick          # seconds (CI)

Writes OUT/summary.md, OUT/results.json, OUT/samples_<run>.png (the sources side by side, seed 0, last epoch)
and OUT/gain_vs_mismatch.png.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import refvae
from refvae.cli import use_backend_or_exit
from refvae.evaluation import frechet_distance, precision_recall
from refvae.features import PCAFeatures, classifier_features, load_classifier

from aggregate_vs_prior import RUNS   # the same four runs (examples/ is on the path when a script runs from it)

SOURCES = ("prior", "aggregate", "aggregate-full", "aggregate-mixture")
RECONSTRUCTIONS = "reconstructions (training)"
FEATURES = ("classifier", "pca")


def measure(images, reference_features, feature_maps):
    """Frechet distance, precision and recall of ``images`` against each reference set, on every feature map:
    keys ``fd_<features>_<reference>``, ``precision_...``, ``recall_...``."""
    row = {}
    for name, f in feature_maps.items():
        feats = f(images)
        for ref, ref_feats in reference_features[name].items():
            row[f"fd_{name}_{ref}"] = frechet_distance(feats, ref_feats)
            row[f"precision_{name}_{ref}"], row[f"recall_{name}_{ref}"] = precision_recall(feats, ref_feats)
    return row


def evaluate(model, train, n_samples, feature_maps, reference_features, seed, B):
    """The mismatch and every source's sample quality, for the model as it is now."""
    aggregate = refvae.aggregate_posterior(model, train)   # measured once; the sources below draw from it
    report = refvae.prior_mismatch(aggregate)
    mixture = refvae.aggregate_kl(aggregate, samples=2000, seed=seed)
    out = {"kl_diag": report.kl_diag, "kl_full": report.kl_full, "kl_mixture": mixture.kl,
           "kl_mixture_se": mixture.standard_error, "active_units": report.n_active, "sources": {}}
    images = {}
    for i, source in enumerate(SOURCES):
        x = model.sample(n_samples, seed=(seed, 77, i), source=source, aggregate=aggregate)   # decoder means, (n, 784)
        images[source] = B.to_numpy(x)
        out["sources"][source] = measure(x, reference_features, feature_maps)
    pick = np.random.default_rng(seed).choice(train.shape[0], size=n_samples, replace=False)
    recon = model.reconstruct(train[pick])
    images[RECONSTRUCTIONS] = B.to_numpy(recon)
    out["sources"][RECONSTRUCTIONS] = measure(recon, reference_features, feature_maps)
    return out, images


def tile(images, ncols=6, pad=1):
    """Images (n, 784) as one (rows*29 - 1, ncols*29 - 1) array, blank (0, shown white) gaps between them."""
    n = images.shape[0]
    rows = -(-n // ncols)
    canvas = np.zeros((rows * (28 + pad) - pad, ncols * (28 + pad) - pad))
    for k in range(n):
        r, c = divmod(k, ncols)
        canvas[r * (28 + pad):r * (28 + pad) + 28, c * (28 + pad):c * (28 + pad) + 28] = images[k].reshape(28, 28)
    return canvas


def plot_sources(images, path, title):
    names = list(images)
    fig = Figure(figsize=(2.3 * len(names), 3.0), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(names)), names):
        ax.imshow(tile(np.clip(images[name][:36], 0, 1)), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)


def plot_gain(points, path):
    """Relative gain in Frechet distance, 1 - FD(source) / FD(prior) (classifier features, test images), against
    each measure of the mismatch, every run, seed and epoch."""
    fig = Figure(figsize=(12.5, 4.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    markers = {"baseline": "o", "small decoder": "s", "small latent": "^", "large lr": "D"}
    colours = {"aggregate": "tab:blue", "aggregate-full": "tab:orange", "aggregate-mixture": "tab:green"}
    for ax, key, label in zip(axes, ("kl_full", "kl_mixture"),
                              ("moment-matched Gaussian, full covariance", "exact mixture")):
        for p in points:
            ax.scatter(p[key], p["relative_gain"], marker=markers.get(p["run"], "o"), color=colours[p["source"]],
                       s=22, alpha=0.75)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(f"mismatch KL(aggregate || N(0, I)), nats: {label}")
    for source, colour in colours.items():
        axes[0].scatter([], [], color=colour, label=source)
    for run, marker in markers.items():
        axes[0].scatter([], [], color="grey", marker=marker, label=run)
    axes[0].set_ylabel("1 - FD(source) / FD(prior)\n(classifier features, test images; > 0: better than the prior)")
    fig.legend(fontsize=8, loc="outside right upper")
    fig.suptitle("Does sampling the aggregate help where the mismatch is large?")
    fig.savefig(path, dpi=110)


def spearman(a, b):
    """Spearman's rank correlation (no ties expected in continuous measurements)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def mean_sd(values, fmt="{:.1f}"):
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return fmt.format(values[0])
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=refvae.BACKENDS, default="numpy")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--checkpoints", default="1,3,10,30", help="epochs after which the samples are measured")
    parser.add_argument("--samples", type=int, default=2000, help="samples per source (and test images compared)")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--out", default="runs/aggregate_sampling")
    args = parser.parse_args(argv)
    use_backend_or_exit(parser, args.backend)
    B = refvae.get_backend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = refvae.datasets.load("mnist-10k")
    checkpoints = sorted({int(e) for e in args.checkpoints.split(",")})
    n_samples, seeds = min(args.samples, test.shape[0]), args.seeds
    if args.quick:
        train, test, checkpoints, n_samples, seeds = train[:600], test[:200], [1, 2], 200, 1
    references = {"test": test[:n_samples], "train": train[:n_samples]}
    pca = PCAFeatures(train, dim=50)
    feature_maps = {"classifier": classifier_features, "pca": pca}
    reference_features = {name: {ref: f(images) for ref, images in references.items()}
                          for name, f in feature_maps.items()}
    # the floor: other training images, which no model made, against both references
    floor = measure(train[n_samples:2 * n_samples], reference_features, feature_maps)
    accuracy = load_classifier().meta["test_accuracy"]
    print(f"other training images: FD (classifier) {floor['fd_classifier_test']:.2f} against the test images, "
          f"{floor['fd_classifier_train']:.2f} against training images")

    results = {}
    for name in args.runs:
        spec = RUNS[name]
        results[name] = []
        for seed in range(seeds):
            options = {"z_dim": 20, **spec["model"]}
            if args.quick:
                options["hidden"] = (32,)
            z_dim = options.pop("z_dim")
            model = refvae.GaussianVAE(784, z_dim, seed=seed, **options)
            optimizer = refvae.Adam(spec["lr"])
            per_epoch, done, start = {}, 0, time.perf_counter()
            for epoch in checkpoints:
                refvae.fit(model, train, epochs=epoch - done, batch_size=128, optimizer=optimizer,
                           binarize="dynamic", seed=seed * 1000 + done, progress=False, verbose=False)
                done = epoch
                row, images = evaluate(model, train, n_samples, feature_maps, reference_features, seed, B)
                per_epoch[epoch] = row
                s = row["sources"]
                print(f"{name} seed {seed} epoch {epoch}: mismatch KL full {row['kl_full']:.2f}, mixture "
                      f"{row['kl_mixture']:.2f}; FD (classifier) " +
                      ", ".join(f"{src} {s[src]['fd_classifier_test']:.1f}" for src in SOURCES), flush=True)
            if seed == 0:
                plot_sources(images, out / f"samples_{name.replace(' ', '_')}.png",
                             f"{name}, seed 0, after {checkpoints[-1]} epochs: decoder means, z from each source")
            results[name].append({"seed": seed, "z_dim": z_dim, "epochs": per_epoch,
                                  "seconds": time.perf_counter() - start})

    points = []
    for name, runs in results.items():
        for r in runs:
            for epoch, row in r["epochs"].items():
                for src in SOURCES[1:]:
                    points.append({"run": name, "seed": r["seed"], "epoch": epoch, "source": src,
                                   "kl_full": row["kl_full"], "kl_mixture": row["kl_mixture"],
                                   **{f"gain_{key}": row["sources"]["prior"][f"fd_{key}"] - row["sources"][src][f"fd_{key}"]
                                      for key in ("classifier_test", "pca_test", "classifier_train")},
                                   "relative_gain": 1.0 - row["sources"][src]["fd_classifier_test"]
                                   / row["sources"]["prior"]["fd_classifier_test"]})
    plot_gain(points, out / "gain_vs_mismatch.png")
    (out / "results.json").write_text(json.dumps({"settings": {**vars(args), "checkpoints": checkpoints,
                                                               "samples": n_samples, "seeds": seeds},
                                                  "classifier_test_accuracy": accuracy,
                                                  "pca_explained_variance": pca.explained,
                                                  "training_images": floor, "results": results,
                                                  "gain_points": points}, indent=1))
    write_summary(out, args, results, points, floor, checkpoints, n_samples, seeds, accuracy, pca.explained)
    print(f"wrote {out / 'summary.md'}")


def write_summary(out, args, results, points, floor, checkpoints, n_samples, seeds, accuracy, explained):
    lines = ["# Sampling from the aggregate posterior", ""]
    if args.quick:
        lines += ["Quick smoke run (tiny model and data, 1 seed): not evidence.", ""]
    lines += [f"mnist-10k, {seeds} seed(s) per run, measured after epochs {', '.join(map(str, checkpoints))}; "
              f"{n_samples} decoder means per source. Each set is compared with {n_samples} test images (held out) "
              f"and with the first {n_samples} training images (seen in training) by the Frechet distance (FD) and "
              f"improved precision (P) / recall (R), k = 3, on the shipped classifier's 64 features (its test "
              f"accuracy {accuracy:.4f}); FD to the test images also on the top 50 principal components of the "
              f"training images ({explained:.1%} of their variance). Mismatch on the training images: KL of the "
              "moment-matched Gaussian (full covariance) and of the exact mixture, nats. Mean ± s.d. over seeds.", "",
              f"The floor, {n_samples} other training images in place of samples: against the test images FD "
              f"{floor['fd_classifier_test']:.1f}, P {floor['precision_classifier_test']:.3f}, "
              f"R {floor['recall_classifier_test']:.3f}, FD PCA {floor['fd_pca_test']:.2f}; against the training "
              f"images FD {floor['fd_classifier_train']:.1f}, P {floor['precision_classifier_train']:.3f}, "
              f"R {floor['recall_classifier_train']:.3f}.", ""]
    for name, runs in results.items():
        lines += [f"## {name}", "",
                  "| epoch | mismatch KL full | KL mixture | source | FD test | P test | R test | FD PCA test "
                  "| FD train | P train | R train |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for epoch in checkpoints:
            rows = [r["epochs"][epoch] for r in runs]
            for k, src in enumerate((*SOURCES, RECONSTRUCTIONS)):
                vals = [r["sources"][src] for r in rows]
                left = (f"| {epoch} | {mean_sd([r['kl_full'] for r in rows], '{:.2f}')} | "
                        f"{mean_sd([r['kl_mixture'] for r in rows], '{:.2f}')} |") if k == 0 else "| | | |"
                cells = [mean_sd([v[key] for v in vals], fmt) for key, fmt in (
                    ("fd_classifier_test", "{:.1f}"), ("precision_classifier_test", "{:.3f}"),
                    ("recall_classifier_test", "{:.3f}"), ("fd_pca_test", "{:.2f}"), ("fd_classifier_train", "{:.1f}"),
                    ("precision_classifier_train", "{:.3f}"), ("recall_classifier_train", "{:.3f}"))]
                lines.append(f"{left} {src} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Does the gain track the mismatch?", "",
              "Per run, seed and epoch: the relative gain 1 - FD(source) / FD(prior) and the absolute gain "
              "FD(prior) - FD(source); Spearman's rank correlation of each with the mismatch over all of them, the "
              "mismatch measured by the moment-matched Gaussian's KL (full covariance) or by the exact mixture's KL. "
              "FD on the classifier's features against the test images unless named.", "",
              "| source | points | gain > 0 | relative gain: median (min, max) | relative gain ~ KL full "
              "| relative gain ~ KL mixture | absolute gain ~ KL full | same, PCA | same, against training images |",
              "|---|---|---|---|---|---|---|---|---|"]
    for src in SOURCES[1:]:
        pts = [p for p in points if p["source"] == src]
        if len(pts) > 2:
            kl, kl_mix = [p["kl_full"] for p in pts], [p["kl_mixture"] for p in pts]
            rel = np.array([p["relative_gain"] for p in pts])
            cells = [f"{np.median(rel):.2f} ({rel.min():.2f}, {rel.max():.2f})", f"{spearman(kl, rel):.2f}",
                     f"{spearman(kl_mix, rel):.2f}"]
            cells += [f"{spearman(kl, [p[f'gain_{key}'] for p in pts]):.2f}"
                      for key in ("classifier_test", "pca_test", "classifier_train")]
            lines.append(f"| {src} | {len(pts)} | {sum(p['gain_classifier_test'] > 0 for p in pts)} | "
                         + " | ".join(cells) + " |")
    lines += ["", "![gain against mismatch](gain_vs_mismatch.png)", ""]
    lines += [f"![{name}](samples_{name.replace(' ', '_')}.png)" for name in results]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
