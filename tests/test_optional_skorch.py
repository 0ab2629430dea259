"""skorch is optional: skinfluence imports and runs its demo without it, and registers the skorch
adapter only once skorch is imported."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _run(code):
    # run from the repository root, so that this checkout's skinfluence is the one imported
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False,
                            capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_demo_runs_without_skorch():
    out = _run("""
        import sys
        sys.modules["skorch"] = None  # as if not installed: `import skorch` raises ImportError
        import skinfluence
        from skinfluence.__main__ import main
        from skinfluence.backend import supported_models
        assert "NeuralNet" not in supported_models()
        assert main(["demo", "--top", "3"]) == 0
    """)
    assert "InfluenceTrimmer" in out and "retrained" in out


def test_skinfluence_never_imports_skorch():
    _run("""
        import sys
        import skinfluence
        from skinfluence import active, backend, influence, multitask, survival, trim
        assert "skorch" not in sys.modules, "skinfluence imported skorch"
    """)


def test_adapter_registers_once_skorch_is_imported():
    pytest.importorskip("skorch")
    _run("""
        from skinfluence.backend import supported_models
        assert "NeuralNet" not in supported_models()
        import skorch
        assert "NeuralNet" in supported_models()
    """)
