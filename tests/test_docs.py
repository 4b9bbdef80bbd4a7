"""The documentation builds without warnings (sphinx -W), gallery included."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_sphinx_build(tmp_path):
    for module in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme"):
        pytest.importorskip(module, reason=f"{module} (the 'docs' extra) is missing")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-b", "html", str(DOCS),
         str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert (tmp_path / "html" / "api.html").is_file()
