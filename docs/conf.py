"""Sphinx configuration of the skdeconv documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (or
``make -C docs html``). Needs the ``docs`` extra; works offline (no intersphinx).
"""

import os
import re
import warnings

import skdeconv

project = "skdeconv"
author = "The skdeconv developers"
copyright = "The skdeconv developers, BSD-3-Clause"  # noqa: A001 (sphinx name)
release = skdeconv.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "obj"

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True  # stubs go to docs/generated (the :toctree: option)
# Methods inherited from scikit-learn (get_params, set_output, ...) and the
# metadata-routing setters it generates (set_<method>_request) are left to
# scikit-learn's documentation: their docstrings link to labels of its docs.
autodoc_default_options = {"members": True}
_SKLEARN_GENERATED = re.compile(r"set_\w+_request$")
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# ``:term:`fit``` in docstrings points at scikit-learn's glossary, which cannot
# be linked without intersphinx (off: the build must work offline).
suppress_warnings = ["ref.term"]

# Docstrings write shapes as plain text, e.g. ``(n_channels, *image_shape)`` or
# ``(n_samples, n_features_in_)``, readable in help(); in reST the ``*`` would
# open emphasis and the trailing ``_`` make a link. Escape both, only inside
# parentheses, outside backquotes and doctest lines.
_TUPLE = re.compile(r"\(((?:[^()`]|\([^()`]*\))*)\)")  # one nesting level
_STARRED = re.compile(r"(?<![\w*\\])\*(?=[A-Za-z_]\w*\s*(?:,|$))")
_TRAILING_UNDERSCORE = re.compile(r"(?<=[A-Za-z0-9])_(?!\w)")


def _escape_tuple(match):
    inner = _TRAILING_UNDERSCORE.sub(r"\\_", _STARRED.sub(r"\\*", match[1]))
    return f"({inner})"


def _escape_shapes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if line.lstrip().startswith((">>>", "...")):
            continue
        parts = re.split(r"(`+[^`]*`+)", line)
        parts[::2] = [_TUPLE.sub(_escape_tuple, part) for part in parts[::2]]
        lines[i] = "".join(parts)

# -- sphinx-gallery -----------------------------------------------------------
os.environ.setdefault("MPLBACKEND", "Agg")
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "doc_module": ("skdeconv",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skdeconv": None},
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}
# matplotlib is told to use Agg by MPLBACKEND; silence its non-GUI-backend
# warning that plt.show() would otherwise raise in the examples.
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="FigureCanvasAgg is non-interactive, and thus cannot be shown",
)

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdeconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
}
html_static_path = []


def _skip_sklearn_generated(app, what, name, obj, skip, options):
    return True if _SKLEARN_GENERATED.match(name) else None


def setup(app):
    app.connect("autodoc-process-docstring", _escape_shapes, priority=400)
    app.connect("autodoc-skip-member", _skip_sklearn_generated)
