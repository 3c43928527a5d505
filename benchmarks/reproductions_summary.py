"""The reproductions' summary: one row per paper number, built from the results the reproduction scripts wrote.

    python benchmarks/reproductions_summary.py           # writes docs/results/reproductions/summary.json and the
                                                         # table between the markers of docs/reproductions.md
    python benchmarks/reproductions_summary.py --check   # exit 1 when either is not what the results give

Every value is read from a result JSON (docs/results/reproductions/...); nothing is typed in here except the
papers' own numbers and the protocol differences, each with its source. A row whose run has not been done is kept,
with refvae_value None, so that what did not run is visible. The fields of each row are a contract: paper,
quantity, paper_value, refvae_value, refvae_se, units, command, seconds, differences, and checkpoint (a path in the
repository) where a model is saved.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "reproductions"
SUMMARY = RESULTS / "summary.json"
DOC = ROOT / "docs" / "reproductions.md"
BEGIN, END = "<!-- summary table: benchmarks/reproductions_summary.py -->", "<!-- end of summary table -->"

SM = "Salakhutdinov & Murray 2008"
SM_DIFFERENCES = [
    "visible biases start at the data's log-odds (the paper's code: 0)",
    "AIS base rate: pixel means clipped to [1e-3, 1 - 1e-3] (the paper's code: (n_i + 5 * 600) / (60000 + 5 * 600))",
    "binarisation: one draw with numpy's default_rng(0) (the paper's: Matlab rand('state', 30)), so the images differ",
    "our epochs: as many as fit the stated budget on 2 CPU cores (the paper's count is not stated in the sources read)",
]
# The papers' numbers. S&M's were recalled from the paper and its discussion, not read from its PDF here.
SM_PAPER = {"cd1-25": None, "cd1-500": -125.53, "cd25-500": -86.34}
HINTON_BARS_BITS = 0.10        # Hinton, Dayan, Frey & Neal 1995, as the issue states it (third parties: 0.08)


def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def rbm_row(name: str) -> dict:
    """S&M's test log-probability for one model: exact log Z when 2^hidden is enumerable, else AIS over seeds."""
    d = RESULTS / "rbm_mnist"
    train, ev = _load(d / f"{name}_training.json"), _load(d / f"{name}_evaluation.json")
    row = {"paper": SM, "quantity": f"{name.upper().replace('-', '(')}): mean log-probability of the 10,000 test "
                                    "images", "paper_value": SM_PAPER[name], "refvae_value": None, "refvae_se": None,
           "units": "nats", "command": None, "seconds": None, "differences": list(SM_DIFFERENCES)}
    if name == "cd1-25":
        row["checkpoint"] = _rel(d / "cd1-25.npz")
        row["differences"].append("the paper's value for this model is not stated in the sources read here")
    else:
        row["differences"].append("the paper's value is as recalled from the paper, not read from its PDF here")
    if train is None or ev is None:
        return row
    row["command"] = f"python {train['command']} && python {ev['command']}"
    row["differences"].append(f"trained {train['epochs']} epochs ({train['seconds'] / 60:.0f} min)")
    if "exact" in ev:
        row.update(refvae_value=ev["exact"]["test_log_p"], refvae_se=0.0, log_z="exact",
                   seconds=train["seconds"] + ev["exact"]["seconds"])
    else:
        ais = ev["ais"]
        n = len(ais["runs"])
        trustworthy = all(r["trustworthy"] for r in ais["runs"])
        row.update(refvae_value=ais["test_log_p"], refvae_se=ais["sd_log_z"] / math.sqrt(n),
                   seconds=train["seconds"] + sum(r["seconds"] for r in ais["runs"]),
                   log_z=f"AIS, {ev['ais_chains']} chains, {ev['ais_betas']} temperatures, {n} seeds "
                         f"(sd {ais['sd_log_z']:.2f} nats)", ais_trustworthy=trustworthy)
        if not trustworthy:
            row["differences"].append("AIS flagged some seeds NOT TRUSTWORTHY (few effective chains): the value is "
                                      "an estimate without a reliable error bar")
    if "raise" in ev:
        r = ev["raise"]
        row["raise_bracket"] = {"images": r["images"], "chains_per_image": r.get("chains_per_image", 1),
                                "raise_mean_log_p": r["mean_log_p"], "ais_mean_log_p": r["ais_log_p_same_images"],
                                "implied_log_z": r["implied_log_z"], "implied_log_z_se": r["implied_log_z_se"]}
    return row


BURDA_NLL = {"vae_k1": ("VAE (k = 1)", 86.76), "iwae_k5": ("IWAE (k = 5)", 85.54)}   # Table 1 (read from the paper)


def burda_row(name: str) -> dict:
    label, paper_value = BURDA_NLL[name]
    res = _load(RESULTS / "iwae_mnist" / f"{name}.json")
    row = {"paper": "Burda, Grosse & Salakhutdinov 2016", "quantity": f"Table 1, one stochastic layer, {label}: "
           "test negative log-likelihood, IW estimate with k = 5000", "paper_value": paper_value,
           "refvae_value": None, "refvae_se": None, "units": "nats", "command": None, "seconds": None,
           "differences": ["test images binarised once with a fixed seed (the paper: dynamic binarisation of the "
                           "test set too)", "refvae's exp(logvar / 2) standard deviation head (the paper: exp of a "
                           "linear layer, the same family)"], "checkpoint": _rel(RESULTS / "iwae_mnist" / f"{name}.npz")}
    if res is None:
        return row
    row.update(refvae_value=res["test_nll"], refvae_se=res["test_nll_se"], command=f"python {res['command']}",
               seconds=res["train_seconds"] + res["eval_seconds"], active_units=res["active_units"])
    if res["passes"] < res["paper_passes"]:
        row["differences"].insert(0, f"{res['passes']} of the paper's {res['paper_passes']} passes "
                                     f"({res['stages_completed']} of its 8 learning-rate stages)")
    return row


def bars_row() -> dict:
    res = _load(RESULTS / "wake_sleep_bars_paper" / "results.json")
    row = {"paper": "Hinton, Dayan, Frey & Neal 1995", "quantity": "bars (4 x 4): KL(data || model) after wake-sleep "
           "training, median over the seeds", "paper_value": HINTON_BARS_BITS, "refvae_value": None,
           "refvae_se": None, "units": "bits", "command": None, "seconds": None,
           "differences": ["the paper's learning rates are not stated in the sources read; refvae's is a constant "
                           "chosen by a short pilot (docs/reproductions.md)"]}
    if res is None:
        return row
    s = res["settings"]
    runs = next(iter(res["results"].values()))
    bits = sorted(r["kl"][-1] / math.log(2) for r in runs)
    n = len(bits)
    median = bits[n // 2] if n % 2 else 0.5 * (bits[n // 2 - 1] + bits[n // 2])
    mean = sum(bits) / n
    sd = math.sqrt(sum((b - mean) ** 2 for b in bits) / (n - 1)) if n > 1 else math.inf
    row.update(refvae_value=median, refvae_se=1.2533 * sd / math.sqrt(n),    # the median's large-sample s.e.
               seconds=sum(r["seconds"] for r in runs), seeds=n, bits_per_seed=bits,
               fraction_at_or_below_paper=sum(b <= HINTON_BARS_BITS for b in bits) / n,
               command=f"python {s['command']}")
    row["differences"].insert(0, f"{s['epochs'] * s['n_train']:,} training examples (the paper: 2,000,000)")
    return row


def build() -> list:
    return [rbm_row("cd1-25"), rbm_row("cd1-500"), rbm_row("cd25-500"), burda_row("vae_k1"), burda_row("iwae_k5"),
            bars_row()]


def _fmt(value, se, digits=2):
    if value is None:
        return "not run"
    return f"{value:.{digits}f}" + (f" ± {se:.{digits}f}" if se else " (exact)")


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a literal | would end the cell."""
    return text.replace("|", "\\|")


def table(rows) -> str:
    lines = [BEGIN, "", "| paper | quantity | paper | refvae ± s.e. | units | run time | command | differences |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        digits = 3 if r["units"] == "bits" else 2
        paper = "not stated here" if r["paper_value"] is None else f"{r['paper_value']:g}"
        seconds = "" if r["seconds"] is None else f"{r['seconds'] / 60:.0f} min"
        command = f"`{_cell(r['command'])}`" if r["command"] else ""
        lines.append(f"| {r['paper']} | {_cell(r['quantity'])} | {paper} | "
                     f"{_fmt(r['refvae_value'], r['refvae_se'], digits)} | {r['units']} | {seconds} | {command} | "
                     f"{_cell('; '.join(r['differences']))} |")
    return "\n".join(lines + ["", END])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare instead of writing")
    args = p.parse_args(argv)
    rows = build()
    text = json.dumps(rows, indent=1) + "\n"
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{_rel(DOC)} lacks the markers {BEGIN} ... {END}: add them where the table goes", file=sys.stderr)
        return 1
    new_doc = doc[:doc.index(BEGIN)] + table(rows) + doc[doc.index(END) + len(END):]
    if args.check:
        stale = [name for name, old, new in ((_rel(SUMMARY), SUMMARY.read_text() if SUMMARY.is_file() else "", text),
                                             (_rel(DOC), doc, new_doc)) if old != new]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python benchmarks/reproductions_summary.py", file=sys.stderr)
            return 1
        return 0
    from refvae.checkpoint import atomic_file
    for path, content in ((SUMMARY, text), (DOC, new_doc)):
        with atomic_file(path) as f:
            f.write(content.encode("utf-8"))
        print(f"written {_rel(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
