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


def _user_guide_block(marker):
    """The user guide's python code-block containing ``marker``."""
    text = (DOCS / "user_guide.rst").read_text()
    for block in text.split(".. code-block:: python\n")[1:]:
        code = []
        for line in block.splitlines():
            if line and not line.startswith("    "):
                break  # the indented block ends at the next paragraph
            code.append(line[4:])
        if marker in "\n".join(code):
            return "\n".join(code)
    raise AssertionError(f"no code-block with {marker!r} in the user guide")


@pytest.mark.slow
def test_grid_search_recipe_beats_pixels_without_warnings():
    """The user guide's classification recipe: at least the raw pixels'
    accuracy with the same classifier, no warning; prints its time."""
    import time
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    namespace = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(_user_guide_block("GridSearchCV(model"), namespace)
    seconds = time.perf_counter() - start
    accuracy = namespace["search"].score(namespace["X_test"], namespace["y_test"])
    pixels = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
        namespace["X_train"], namespace["y_train"]
    ).score(namespace["X_test"], namespace["y_test"])
    print(f"recipe: accuracy {accuracy:.4f} (pixels {pixels:.4f}) in {seconds:.1f} s")
    assert accuracy >= pixels
