"""docs/results/reproductions/summary.json and the table of docs/reproductions.md: the contract's fields, every
value read from the result it summarises (the build re-run here gives the committed files), the checkpoints there."""

import json
import subprocess
import sys
from pathlib import Path

from rbm import BernoulliRBM

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "docs" / "results" / "reproductions" / "summary.json"
FIELDS = {"paper", "quantity", "paper_value", "refvae_value", "refvae_se", "units", "command", "seconds",
          "differences"}


def _rows():
    return json.loads(SUMMARY.read_text())


def test_every_row_has_the_contract_fields():
    rows = _rows()
    assert isinstance(rows, list) and len(rows) >= 5
    for row in rows:
        assert FIELDS <= set(row), sorted(FIELDS - set(row))
        assert isinstance(row["differences"], list) and row["units"] in ("nats", "bits")
        if row["refvae_value"] is not None:
            assert row["command"].startswith("python ") and row["seconds"] > 0 and row["refvae_se"] >= 0


def test_summary_and_doc_table_are_what_the_results_give():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproductions_summary.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_the_25_hidden_rbm_is_saved_and_its_row_is_its_exact_evaluation():
    row = next(r for r in _rows() if r["quantity"].startswith("CD1(25)"))
    model = BernoulliRBM.load(ROOT / row["checkpoint"])
    assert (model.n_visible, model.n_hidden) == (784, 25)
    evaluation = json.loads((ROOT / "docs/results/reproductions/rbm_mnist/cd1-25_evaluation.json").read_text())
    assert row["refvae_value"] == evaluation["exact"]["test_log_p"] and row["log_z"] == "exact"


def test_checkpoints_named_in_the_summary_exist():
    for row in _rows():
        if "checkpoint" in row and row["refvae_value"] is not None:
            assert (ROOT / row["checkpoint"]).is_file(), row["checkpoint"]


def test_the_doc_table_has_eight_columns_in_every_row():
    """A literal | inside a cell (KL(data || model)) must be escaped, or the row falls apart."""
    import re
    doc = (ROOT / "docs" / "reproductions.md").read_text()
    table = doc[doc.index("<!-- summary table"):doc.index("<!-- end of summary table")]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == len(_rows()) + 2
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 9, row[:120]
