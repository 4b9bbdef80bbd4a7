"""The example gallery (``examples/plot_*.py``).

A fast check that every example has the RST title sphinx-gallery needs, and slow
tests that run each example as a script, headless, as a user would.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GALLERY = sorted(EXAMPLES.glob("plot_*.py"))
# A guard against hangs, not the time budget: each example takes well under
# 2 minutes on 2 idle cores (the budget); a busy machine may be slower.
TIMEOUT_SECONDS = 600


def _title(path):
    """The RST title of the module docstring of ``path``, or None."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    lines = [line.rstrip() for line in (docstring or "").strip().splitlines()]
    if len(lines) < 2 or not lines[0] or len(lines[1]) < len(lines[0]):
        return None
    return lines[0] if set(lines[1]) == {"="} else None


def test_gallery_examples_have_an_rst_title():
    names = [path.name for path in GALLERY]
    assert len(GALLERY) >= 5, f"expected at least 5 examples in {EXAMPLES}: {names}"
    untitled = [path.name for path in GALLERY if _title(path) is None]
    assert not untitled, (
        f"examples without a module docstring starting with a title underlined "
        f"by '=': {untitled}"
    )


def test_title_check_rejects_missing_or_short_underline(tmp_path):
    cases = {
        '"""\nTitle\n=====\n\nText.\n"""\n': "Title",
        '"""\nTitle\n===\n"""\n': None,
        '"""\nTitle\n-----\n"""\n': None,
        "x = 1\n": None,
    }
    for source, expected in cases.items():
        path = tmp_path / "plot_case.py"
        path.write_text(source)
        assert _title(path) == expected, source


@pytest.mark.slow
@pytest.mark.parametrize("path", GALLERY, ids=[path.stem for path in GALLERY])
def test_example_runs(path, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, (
        f"{path.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
