"""Every public docstring passes numpydoc's validation and documents true defaults.

Public objects are the names in ``skdeconv.__all__`` and in the ``__all__`` of
every public submodule (``skdeconv.<name>`` with no leading underscore), and
the public methods and properties that skdeconv defines on those classes
(methods inherited from scikit-learn are scikit-learn's to document).  An
object exported under two names (an alias) is checked once.

Enforced: every check of ``numpydoc.validate`` except the ones scikit-learn's
own ``sklearn/tests/test_docstrings.py`` also leaves out, for the same reasons:

- everywhere: RT02 (the first line of a Returns entry names the returned
  object, e.g. ``self : object``, not only its type), GL01 and GL02 (where the
  summary starts after the opening quotes, and blank lines around it);
- on methods and properties: ES01, SA01 and EX01 (extended summary, See Also
  and Examples are asked of the class and of public functions only);
- on properties: PR02 and GL08 (a property has no signature to compare with).

Second check: in ``Parameters``, every documented default (``name : type,
default=X``) equals the default in the signature (for a class, of
``__init__``), and every parameter of the signature is documented.
"""

import ast
import importlib
import inspect
import pkgutil
import re

import pytest

import skdeconv

numpydoc_validate = pytest.importorskip("numpydoc.validate")
from numpydoc.docscrape import ClassDoc, FunctionDoc  # noqa: E402

# Codes ignored everywhere, on methods and on properties (see the module docstring).
IGNORED = {"RT02", "GL01", "GL02"}
IGNORED_ON_METHODS = {"ES01", "SA01", "EX01"}
IGNORED_ON_PROPERTIES = {"PR02", "GL08"}


def _public_modules():
    names = ["skdeconv"] + sorted(
        f"skdeconv.{info.name}"
        for info in pkgutil.iter_modules(skdeconv.__path__)
        if not info.name.startswith("_")
    )
    return [importlib.import_module(name) for name in names]


def _defined_in_skdeconv(obj):
    if isinstance(obj, property):
        obj = obj.fget
    return (getattr(inspect.unwrap(obj), "__module__", None) or "").startswith("skdeconv")


def _public_objects():
    """``(import path, object, kind)``, kind one of function/class/method/property."""
    seen, found = set(), []
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            path = f"{module.__name__}.{name}"
            found.append((path, obj, "class" if inspect.isclass(obj) else "function"))
            if not inspect.isclass(obj):
                continue
            for attr in sorted(dir(obj)):
                static = inspect.getattr_static(obj, attr, None)
                if attr.startswith("_") or not _defined_in_skdeconv(static):
                    continue
                kind = "property" if isinstance(static, property) else "method"
                found.append((f"{path}.{attr}", getattr(obj, attr), kind))
    return found


PUBLIC = _public_objects()


def _param(path, kind):
    return pytest.param(path, kind, id=path)


def _enforced(errors, kind):
    for code, message in errors:
        if code in IGNORED:
            continue
        if kind in ("method", "property") and code in IGNORED_ON_METHODS:
            continue
        if kind == "property" and code in IGNORED_ON_PROPERTIES:
            continue
        yield code, message


def test_every_public_module_declares_all():
    for module in _public_modules():
        assert isinstance(getattr(module, "__all__", None), list), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.__all__ names {name}"


@pytest.mark.parametrize(
    "path, kind", [_param(path, kind) for path, _, kind in PUBLIC]
)
def test_numpydoc_validation(path, kind):
    result = numpydoc_validate.validate(path)
    errors = list(_enforced(result["errors"], kind))
    assert not errors, f"{path} ({result['file']}:{result['file_line']}):\n" + "\n".join(
        f"  {code}: {message}" for code, message in errors
    )


# ------------------------------------------------------------ documented defaults
_DEFAULT = re.compile(r"default\s*[=:]\s*(.+)$")


def _documented_default(type_text):
    """The text after ``default=`` in a parameter's type line, or None."""
    match = _DEFAULT.search(type_text)
    return None if match is None else match.group(1).strip().rstrip(".")


def _same_default(text, value):
    """Whether the documented default ``text`` denotes the signature's ``value``."""
    try:
        documented = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        # Not a literal (a name such as np.float64): compare with its name.
        name = getattr(value, "__name__", None)
        return text in {repr(value), name, f"np.{name}", f"numpy.{name}"}
    if isinstance(documented, bool) or isinstance(value, bool):
        return documented is value
    if isinstance(documented, (int, float)) and isinstance(value, (int, float)):
        return documented == value
    return type(documented) is type(value) and documented == value


def default_mismatches(obj):
    """Problems between the Parameters section of ``obj`` and its signature."""
    doc = ClassDoc(obj) if inspect.isclass(obj) else FunctionDoc(obj)
    signature = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    parameters = {
        name: parameter for name, parameter in signature.parameters.items()
        if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL,
                                                     parameter.VAR_KEYWORD)
    }
    documented = {}
    for entry in doc["Parameters"]:
        for name in entry.name.split(","):
            documented[name.strip()] = entry.type
    problems = []
    for name, parameter in parameters.items():
        if name not in documented:
            problems.append(f"parameter {name!r} is not documented")
            continue
        text = _documented_default(documented[name])
        if text is None:
            continue
        if parameter.default is parameter.empty:
            problems.append(f"{name}: documents default={text} but has no default")
        elif not _same_default(text, parameter.default):
            problems.append(
                f"{name}: documents default={text} but the signature has "
                f"{parameter.default!r}"
            )
    return problems


@pytest.mark.parametrize(
    "path, kind",
    [_param(path, kind) for path, _, kind in PUBLIC
     if kind in ("function", "class", "method")],
)
def test_documented_defaults_match_signatures(path, kind):
    obj = dict((p, o) for p, o, _ in PUBLIC)[path]
    problems = default_mismatches(obj)
    assert not problems, f"{path}:\n  " + "\n  ".join(problems)


def test_the_default_check_catches_a_wrong_default():
    def encode(X, *, tol=1e-3, solver="auto", layers=(1, 2)):
        """Encode.

        Parameters
        ----------
        X : ndarray
            Data.
        tol : float, default=1e-4
            Tolerance.
        solver : str, default="auto"
            Solver.
        layers : tuple of int, default=(1, 2)
            Layers.
        """

    assert default_mismatches(encode) == [
        "tol: documents default=1e-4 but the signature has 0.001"
    ]
