"""Command line: ``python -m skinfluence trim`` and ``demo``."""

import csv

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from skinfluence.__main__ import _parse_budget, main


def test_budget_parsing():
    assert _parse_budget("5%") == 0.05
    assert _parse_budget("0.1") == 0.1
    assert _parse_budget("12") == 12
    with pytest.raises(Exception, match="percentage"):
        _parse_budget("five")


def test_trim_csv(tmp_path, capsys):
    data = load_breast_cancer()
    path, out = tmp_path / "data.csv", tmp_path / "kept.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"f{j}" for j in range(5)] + ["label"])
        labels = np.where(data.target == 1, "benign", "malignant")
        writer.writerows([*np.round(x[:5], 4), lab] for x, lab in zip(data.data, labels))
    assert main(["trim", str(path), "--target", "label", "--budget", "5%", "--model",
                 "logistic", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    n_removed = round(0.05 * round(0.8 * len(labels)))
    assert f"removed {n_removed} of {len(labels)} rows" in printed
    assert "validation accuracy" in printed and "after trimming" in printed
    with open(out) as handle:
        assert sum(1 for _ in handle) == 1 + len(labels) - n_removed
    with pytest.raises(SystemExit, match="no column"):
        main(["trim", str(path), "--target", "nope"])


def test_demo_runs(capsys):
    assert main(["demo", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "retrained" in printed and "self (default)" in printed and "random" in printed
