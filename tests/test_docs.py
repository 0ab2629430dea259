"""The documentation builds without a single warning (``-W``), and sphinx-gallery executes an
example and embeds its figure and output (one quick example here; ``docs/run_gallery`` runs all)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    env = {**os.environ, "SKINFLUENCE_GALLERY_PATTERN": "plot_cox_influence", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        check=False, capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "auto_examples" / "index.html").is_file()
    page = (tmp_path / "auto_examples" / "plot_cox_influence.html").read_text()
    assert "sphx_glr_plot_cox_influence_001.png" in page  # the executed example's figure
    assert "Pearson r vs LOO" in page  # and its printed table
    assert (tmp_path / "_images" / "sphx_glr_plot_cox_influence_001.png").is_file()
