"""Command line: ``python -m skinfluence trim`` and ``demo``; user errors are one line, exit 2."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import skinfluence
from skinfluence.__main__ import _parse_budget, main, trimming_methods
from skinfluence.trim import InfluenceTrimmer


@pytest.fixture(scope="module")
def table():
    data = load_breast_cancer()
    frame = pd.DataFrame(np.round(data.data[:, :5], 4), columns=[f"f{j}" for j in range(5)])
    frame["label"] = np.where(data.target == 1, "benign", "malignant")
    return frame


@pytest.fixture
def csv(tmp_path, table):
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    return path


def _error(capsys, argv):
    """Run the CLI expecting a user error: return its one stderr line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _argparse_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_budget_parsing():
    assert _parse_budget("5%") == 0.05
    assert _parse_budget("0.1") == 0.1
    assert _parse_budget("12") == 12
    assert _parse_budget("auto") == "auto"
    with pytest.raises(Exception, match="percentage"):
        _parse_budget("five")


def test_trim_csv_writes_kept_rows_and_scores(tmp_path, csv, table, capsys):
    out, scores = tmp_path / "kept.csv", tmp_path / "scores.csv"
    assert main(["trim", str(csv), "--target", "label", "--budget", "5%", "-o", str(out),
                 "--scores", str(scores)]) == 0
    printed = capsys.readouterr().out
    n_fit = len(table) - round(0.2 * len(table))
    n_removed = round(0.05 * n_fit)
    assert f"removed {n_removed} of {len(table)} rows" in printed
    assert "validation accuracy" in printed and "after trimming" in printed
    kept = pd.read_csv(out)
    assert len(kept) == len(table) - n_removed and list(kept.columns) == list(table.columns)
    written = pd.read_csv(scores)
    assert list(written["row"]) == list(range(len(table)))
    assert written["score"].notna().sum() == n_fit  # held-out rows have no score
    removed = written.loc[written["removed"], "row"].to_numpy()
    assert len(removed) == n_removed
    # rows are numbered from 0 (the first data row): the removed rows are exactly the missing ones
    dropped = table.drop(index=removed).reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, dropped)
    listed = [int(line.split()[0]) for line in printed.splitlines()[2:2 + n_removed]]
    assert sorted(listed) == sorted(removed.tolist())
    # the most harmful first: self-influence scores listed in decreasing order
    listed_scores = written.set_index("row").loc[listed, "score"].to_numpy()
    assert np.all(np.diff(listed_scores) <= 0)


def test_trim_reads_stdin_with_a_separator(table, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(table.to_csv(index=False, sep=";")))
    assert main(["trim", "-", "--target", "label", "--sep", ";", "--budget", "3"]) == 0
    assert f"removed 3 of {len(table)} rows" in capsys.readouterr().out


def test_missing_file_one_line_exit_2():
    """The issue's acceptance check, ``python -m skinfluence trim missing.csv``, as run."""
    result = subprocess.run([sys.executable, "-m", "skinfluence", "trim", "missing.csv"],
                            capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parents[1])
    assert result.returncode == 2
    assert result.stderr == "skinfluence trim: error: no such file: missing.csv\n"
    assert result.stdout == ""


def test_missing_cells_are_reported_by_row_and_column(tmp_path, table, capsys):
    frame = table.copy()
    frame.loc[3, "f2"] = np.nan
    frame.loc[7, "label"] = ""  # an empty label cell is missing, not a class
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    err = _error(capsys, ["trim", str(path), "--target", "label"])
    assert "row 3 column 'f2'" in err and "row 7 column 'label'" in err


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.assign(label="benign"), "single class"),
    (lambda f: f.assign(f1=np.where(f.index == 5, np.inf, f["f1"])), "row 5 column 'f1'"),
    (lambda f: f.iloc[:0], "no data rows"),
])
def test_bad_tables(tmp_path, table, capsys, edit, message):
    path = tmp_path / "bad.csv"
    edit(table.copy()).to_csv(path, index=False)
    assert message in _error(capsys, ["trim", str(path), "--target", "label"])


def test_text_columns_are_one_hot_encoded(tmp_path, table, capsys):
    # a text feature column is encoded inside the trimmed Pipeline, not refused; the numeric
    # columns are standardised as before, and the text column adds one indicator per category
    # but the first
    frame = table.assign(site=np.where(np.arange(len(table)) % 3 == 0, "north", "south"))
    path, out, scores = tmp_path / "mixed.csv", tmp_path / "kept.csv", tmp_path / "scores.csv"
    frame.to_csv(path, index=False)
    assert main(["trim", str(path), "--target", "label", "--budget", "4", "-o", str(out),
                 "--scores", str(scores)]) == 0
    assert f"removed 4 of {len(frame)} rows" in capsys.readouterr().out
    kept = pd.read_csv(out)
    assert list(kept.columns) == list(frame.columns) and len(kept) == len(frame) - 4
    # the same rows as a bare model on the standardised numeric columns and the indicators
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    written = pd.read_csv(scores)
    fit_rows = np.sort(train_test_split(np.arange(len(frame)), test_size=0.2,
                                        stratify=frame["label"], random_state=0)[0])
    numeric = StandardScaler().fit_transform(table.iloc[fit_rows, :5])
    indicators = (frame["site"].iloc[fit_rows] == "south").to_numpy(dtype=float)[:, None]
    bare = InfluenceTrimmer(LogisticRegression(solver="newton-cholesky", tol=1e-10),
                            budget=4).fit(np.hstack([numeric, indicators]),
                                                         frame["label"].iloc[fit_rows])
    np.testing.assert_allclose(written["score"].to_numpy()[fit_rows], bare.scores_, rtol=1e-5)


def test_bad_options(csv, capsys):
    assert "no column 'nope'" in _error(capsys, ["trim", str(csv), "--target", "nope"])
    assert "name the target column with --target" in _error(capsys, ["trim", str(csv)])
    n = len(pd.read_csv(csv))
    assert "budget" in _error(capsys, ["trim", str(csv), "--target", "label", "--budget",
                                       str(n)])
    assert "numeric target" in _error(capsys, ["trim", str(csv), "--target", "label",
                                               "--model", "ridge"])
    assert "--holdout" in _argparse_error(capsys, ["trim", str(csv), "--target", "label",
                                                   "--holdout", "1.5"])
    assert "--noise" in _argparse_error(capsys, ["demo", "--noise", "1.5"])
    assert "--method" in _argparse_error(capsys, ["trim", str(csv), "--target", "label",
                                                  "--method", "magic"])


def test_verbose_keeps_the_traceback(tmp_path, capsys):
    with pytest.raises(Exception, match="no such file"):
        main(["trim", str(tmp_path / "missing.csv"), "--target", "y", "--verbose"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skinfluence {skinfluence.__version__}"


def test_methods_come_from_the_trimmer():
    methods, default = trimming_methods()
    assert set(methods) == InfluenceTrimmer._parameter_constraints["method"][0].options
    assert default == InfluenceTrimmer(None).method and methods[0] == default


def test_demo_runs(capsys):
    assert main(["demo", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "retrained" in printed and "(default)" in printed and "random" in printed
