"""Input validation of every public entry point, no side effects, extreme values,
and the progress / convergence reporting of long fits.

Every bad input must raise a ValueError or TypeError whose message names the
parameter and, where there is one, the expected and the actual value or shape.
Inputs and fitted attributes are never modified or aliased, and very large or
very small values give a finite (and right) result or a clear error, never a
silent NaN/inf.
"""

import re
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from skdeconv import (
    ConvSparseCoder,
    DeconvNetworkTransformer,
    LocalContrastNormalizer,
    conv_dict_learning,
    conv_sparse_encode,
    images_to_rows,
    make_connectivity,
    rows_to_images,
)
from skdeconv._solvers import SOLVERS
from skdeconv.preprocessing import local_contrast_normalize

# Small max_iter keeps these tests fast; convergence is tested at the end.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

IMAGE_SHAPE = (6, 6)
N_CHANNELS = 2
N_FEATURES = N_CHANNELS * 36  # 72
N_FILTERS = 3
MAP_FEATURES = N_FILTERS * 8 * 8  # 3 maps of 8 x 8 with 3 x 3 filters
FAST = dict(max_iter=20, tol=1e-3)


def _rows(n_samples=4, seed=0, dtype=np.float64):
    return np.random.RandomState(seed).standard_normal((n_samples, N_FEATURES)).astype(dtype)


def _filters(seed=1, dtype=np.float64):
    filters = np.random.RandomState(seed).standard_normal((N_FILTERS, N_CHANNELS, 3, 3))
    filters /= np.sqrt(np.sum(filters**2, axis=(2, 3), keepdims=True))
    return filters.astype(dtype)


def _coder(**params):
    defaults = dict(
        n_filters=N_FILTERS, filter_shape=3, image_shape=IMAGE_SHAPE, n_epochs=2,
        random_state=0, **FAST,
    )
    return ConvSparseCoder(**{**defaults, **params})


def _network(**params):
    defaults = dict(
        n_filters=(N_FILTERS, 4), filter_shape=3, connectivity=("full", "random_pairs"),
        image_shape=IMAGE_SHAPE, n_epochs=1, random_state=0, **FAST,
    )
    return DeconvNetworkTransformer(**{**defaults, **params})


@pytest.fixture(scope="module")
def coder():
    return _coder().fit(_rows())


@pytest.fixture(scope="module")
def network():
    """Layer 1: 3 maps of 8 x 8 (192 features); layer 2: 4 maps of 10 x 10 (400)."""
    return _network().fit(_rows())


def _numbers(*values):
    """Regex requiring every value to appear as a whole number in the message."""
    return "".join(rf"(?=.*(?<![\d.]){re.escape(str(v))}(?![\d.]))" for v in values)


def _all(*patterns):
    """Regex requiring every pattern to appear somewhere in the message."""
    return "".join(f"(?=.*{p})" for p in patterns)


# ---------------------------------------------------------------- bad X
# Every entry point that takes a 2-D sample matrix: name -> call(coder, network, X),
# with ``coder`` and ``network`` the fitted fixtures.
X_ENTRY_POINTS = {
    "ConvSparseCoder.fit": lambda c, n, X: _coder().fit(X),
    "ConvSparseCoder.partial_fit": lambda c, n, X: _coder().partial_fit(X),
    "ConvSparseCoder.partial_fit(fitted)": lambda c, n, X: _coder().fit(_rows()).partial_fit(X),
    "ConvSparseCoder.transform": lambda c, n, X: c.transform(X),
    "ConvSparseCoder.score": lambda c, n, X: c.score(X),
    "DeconvNetworkTransformer.fit": lambda c, n, X: _network().fit(X),
    "DeconvNetworkTransformer.transform": lambda c, n, X: n.transform(X),
    "DeconvNetworkTransformer.transform(layers)": lambda c, n, X: n.transform(X, layers=[1]),
    "DeconvNetworkTransformer.score": lambda c, n, X: n.score(X),
    "conv_sparse_encode": lambda c, n, X: conv_sparse_encode(
        X, _filters(), image_shape=IMAGE_SHAPE, **FAST
    ),
    "conv_dict_learning": lambda c, n, X: conv_dict_learning(
        X, N_FILTERS, 3, image_shape=IMAGE_SHAPE, n_epochs=1, **FAST
    ),
    "LocalContrastNormalizer.fit": lambda c, n, X: LocalContrastNormalizer(IMAGE_SHAPE).fit(X),
    "LocalContrastNormalizer.transform": lambda c, n, X: LocalContrastNormalizer(
        IMAGE_SHAPE
    ).fit(_rows()).transform(X),
}
# Entry points taking feature maps, with the width they expect.
MAP_ENTRY_POINTS = {
    "ConvSparseCoder.inverse_transform": (lambda c, n, Z: c.inverse_transform(Z), MAP_FEATURES),
    "DeconvNetworkTransformer.inverse_transform": (lambda c, n, Z: n.inverse_transform(Z), 400),
    "DeconvNetworkTransformer.project(1)": (lambda c, n, Z: n.project(Z, 1), MAP_FEATURES),
    "DeconvNetworkTransformer.project(2)": (lambda c, n, Z: n.project(Z, 2), 400),
}


def _with_width(call, width):
    """``call`` fed X resized to ``width`` columns (when X is a 2-D matrix)."""

    def resized(coder, network, X):
        X = np.asarray(X)
        if X.ndim == 2:
            X = np.resize(X, (X.shape[0], width))
        return call(coder, network, X)

    return resized


ALL_ENTRY_POINTS = {
    **X_ENTRY_POINTS,
    **{name: _with_width(call, width) for name, (call, width) in MAP_ENTRY_POINTS.items()},
}


def _input_name(entry_point):
    return "Z" if "project" in entry_point else "X"


@pytest.mark.parametrize("entry_point", sorted(ALL_ENTRY_POINTS))
@pytest.mark.parametrize(
    "value, match", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")]
)
def test_non_finite_values_rejected(coder, network, entry_point, value, match):
    X = _rows()
    X[1, 5] = value
    with pytest.raises(ValueError, match=rf"{_input_name(entry_point)}\b.*{match}"):
        ALL_ENTRY_POINTS[entry_point](coder, network, X)


@pytest.mark.parametrize("entry_point", sorted(ALL_ENTRY_POINTS))
def test_empty_x_rejected(coder, network, entry_point):
    with pytest.raises(ValueError, match=r"0 sample\(s\).*minimum of 1"):
        ALL_ENTRY_POINTS[entry_point](coder, network, np.empty((0, N_FEATURES)))


@pytest.mark.parametrize("entry_point", sorted(ALL_ENTRY_POINTS))
def test_3d_x_rejected(coder, network, entry_point):
    with pytest.raises(ValueError, match=r"dim 3"):
        ALL_ENTRY_POINTS[entry_point](coder, network, _rows().reshape(4, N_CHANNELS, 36))


@pytest.mark.parametrize("entry_point", sorted(ALL_ENTRY_POINTS))
def test_1d_x_rejected(coder, network, entry_point):
    with pytest.raises(ValueError, match=r"Expected 2D array, got 1D array"):
        ALL_ENTRY_POINTS[entry_point](coder, network, _rows()[0])


@pytest.mark.parametrize("entry_point", sorted(ALL_ENTRY_POINTS))
def test_complex_x_rejected(coder, network, entry_point):
    with pytest.raises(ValueError, match=r"[Cc]omplex"):
        ALL_ENTRY_POINTS[entry_point](coder, network, _rows() * (1 + 1j))


@pytest.mark.parametrize(
    "images, match",
    [(np.full((2, 5, 5), np.nan), "images contains NaN"),
     (np.full((2, 5, 5), np.inf), "images contains infinity"),
     (np.ones((0, 5, 5)), r"0 sample\(s\)"), (np.ones((2, 5, 5)) * 1j, "[Cc]omplex")],
    ids=["nan", "inf", "empty", "complex"],
)
def test_local_contrast_normalize_rejects_bad_images(images, match):
    with pytest.raises(ValueError, match=match):
        local_contrast_normalize(images)


@pytest.mark.parametrize(
    "entry_point",
    ["ConvSparseCoder.partial_fit(fitted)", "ConvSparseCoder.transform", "ConvSparseCoder.score",
     "DeconvNetworkTransformer.transform", "DeconvNetworkTransformer.score",
     "LocalContrastNormalizer.transform"],
)
def test_wrong_width_rejected(coder, network, entry_point):
    with pytest.raises(ValueError, match=r"X has 71 features.*expecting 72 features"):
        X_ENTRY_POINTS[entry_point](coder, network, _rows()[:, :71])


@pytest.mark.parametrize("entry_point", sorted(MAP_ENTRY_POINTS))
def test_wrong_width_of_maps_rejected(coder, network, entry_point):
    call, width = MAP_ENTRY_POINTS[entry_point]
    name = _input_name(entry_point)
    with pytest.raises(ValueError, match=rf"^{name} has 7 features" + _numbers(width)):
        call(coder, network, np.zeros((2, 7)))


def test_not_fitted(coder):
    from sklearn.exceptions import NotFittedError

    for call in (
        lambda: _coder().transform(_rows()),
        lambda: _coder().inverse_transform(np.zeros((1, MAP_FEATURES))),
        lambda: _coder().score(_rows()),
        lambda: _network().transform(_rows()),
        lambda: _network().project(np.zeros((1, MAP_FEATURES)), 1),
        lambda: _network().project_filters(1),
    ):
        with pytest.raises(NotFittedError):
            call()


# ---------------------------------------------------------------- geometry
@pytest.mark.parametrize(
    "call",
    [
        lambda shape: _coder(image_shape=shape).fit(_rows()),
        lambda shape: _network(image_shape=shape).fit(_rows()),
        lambda shape: conv_sparse_encode(_rows(), _filters()[:, :1], image_shape=shape),
        lambda shape: conv_dict_learning(_rows(), 2, 3, image_shape=shape, n_epochs=1),
    ],
    ids=["coder", "network", "conv_sparse_encode", "conv_dict_learning"],
)
@pytest.mark.parametrize("shape, pixels", [((5, 5), 25), ((7,), 7), ((10, 10), 100)])
def test_image_shape_must_divide_n_features(call, shape, pixels):
    match = _all(rf"image_shape={re.escape(str(shape))}") + _numbers(pixels, N_FEATURES)
    with pytest.raises(ValueError, match=match):
        call(shape)


@pytest.mark.parametrize(
    "call",
    [
        lambda shape: rows_to_images(_rows(), shape),
        lambda shape: LocalContrastNormalizer(image_shape=shape).fit_transform(_rows()),
    ],
    ids=["rows_to_images", "LocalContrastNormalizer"],
)
def test_preprocessing_image_shape_must_divide_n_features(call):
    with pytest.raises(ValueError, match=_all(r"image_shape=\(5, 5\)") + _numbers(25, N_FEATURES)):
        call((5, 5))


@pytest.mark.parametrize(
    "call",
    [
        lambda fs: _coder(filter_shape=fs).fit(_rows()),
        lambda fs: conv_dict_learning(_rows(), 2, fs, image_shape=IMAGE_SHAPE, n_epochs=1),
        lambda fs: _network(filter_shape=(fs, 3)).fit(_rows()),
    ],
    ids=["coder", "conv_dict_learning", "network"],
)
@pytest.mark.parametrize("filter_shape", [(3,), (3, 3, 3)])
def test_filter_rank_must_match_image_rank(call, filter_shape):
    match = rf"filter_shape={re.escape(str(filter_shape))} has {len(filter_shape)} axes.*2 spatial"
    with pytest.raises(ValueError, match=match):
        call(filter_shape)


@pytest.mark.parametrize("shape", [(3, 2, 3), (3, 2, 3, 3, 3)])
def test_filters_rank_must_match_image_rank_in_encode(shape):
    match = rf"filters must have shape.*2 spatial axes.*{re.escape(str(shape))}"
    with pytest.raises(ValueError, match=match):
        conv_sparse_encode(_rows(), np.ones(shape), image_shape=IMAGE_SHAPE)


def test_filters_channels_must_match_in_encode():
    with pytest.raises(ValueError, match=r"n_channels=2.*\(3, 1, 3, 3\)"):
        conv_sparse_encode(_rows(), _filters()[:, :1], image_shape=IMAGE_SHAPE)


def test_filters_with_an_empty_axis_rejected_in_encode():
    with pytest.raises(ValueError, match=r"filters.*\(3, 2, 3, 0\)"):
        conv_sparse_encode(_rows(), np.ones((3, 2, 3, 0)), image_shape=IMAGE_SHAPE)


@pytest.mark.parametrize("param", ["filter_shape", "image_shape"])
@pytest.mark.parametrize(
    "bad",
    [(0, 3), (3, -1), (-6, -12), (0,), (), (2.5, 3), ("a", 3), (True, 3), (6.0, 12.0)],
    ids=repr,
)
def test_non_positive_or_non_integer_shapes_rejected(param, bad):
    """Shapes are tuples of positive ints: no 0, negatives, floats or bools."""
    params = {"filter_shape": (3, 3), "image_shape": (6, 12), param: bad}
    if param == "filter_shape" and len(bad) == 1:
        params["image_shape"] = (72,)
    with pytest.raises(ValueError, match=param):
        _coder(**params).fit(_rows())


@pytest.mark.parametrize("bad", [0, -3, True])
def test_scalar_filter_shape_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match=rf"filter_shape.*{bad}"):
        _coder(filter_shape=bad).fit(_rows())


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: _coder(n_filters=0).fit(_rows()), "n_filters"),
        (lambda: _network(n_filters=(3, 0)).fit(_rows()), "n_filters"),
        (lambda: _network(n_filters=()).fit(_rows()), "n_filters"),
        (lambda: conv_dict_learning(_rows(), 0, 3), "n_filters"),
        (lambda: make_connectivity(None, 0, 2), "n_filters"),
        (lambda: make_connectivity(None, 2, 0), "n_channels"),
        (lambda: _coder(max_iter=0).fit(_rows()), "max_iter"),
        (lambda: _coder(n_epochs=0).fit(_rows()), "n_epochs"),
        (lambda: _coder(tol=-1.0).fit(_rows()), "tol"),
        (lambda: conv_sparse_encode(_rows(), _filters(), image_shape=IMAGE_SHAPE, max_iter=0),
         "max_iter"),
        (lambda: local_contrast_normalize(np.ones((2, 5, 5)), kernel_size=0), "kernel_size"),
        (lambda: local_contrast_normalize(np.ones((2, 5, 5)), kernel_size=4), "kernel_size"),
        (lambda: local_contrast_normalize(np.ones((2, 5, 5)), sigma=0.0), "sigma"),
        (lambda: LocalContrastNormalizer(kernel_size=-1).fit(_rows()), "kernel_size"),
        (lambda: rows_to_images(_rows(), (0, 72)), "image_shape"),
        (lambda: rows_to_images(_rows(), 72, channel_axis=0), "channel_axis"),
        (lambda: images_to_rows(np.ones((2, 3, 4)), channel_axis=0), "channel_axis"),
        (lambda: images_to_rows(np.ones(5)), "images"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_non_positive_sizes_rejected(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ---------------------------------------------------------------- p and lambda
BAD_P = [0, 0.0, -0.5, 1.5, 2, np.nan, np.inf, "1"]
BAD_LMBDA = [0, 0.0, -1.0, np.inf, np.nan, "1"]
PARAM_CALLS = {
    "coder": lambda **kw: _coder(**kw).fit(_rows()),
    "network": lambda **kw: _network(**kw).fit(_rows()),
    "network(layer 2)": lambda **kw: _network(**{k: (1.0, v) for k, v in kw.items()}).fit(_rows()),
    "conv_sparse_encode": lambda **kw: conv_sparse_encode(
        _rows(), _filters(), image_shape=IMAGE_SHAPE, **kw
    ),
    "conv_dict_learning": lambda **kw: conv_dict_learning(
        _rows(), 2, 3, image_shape=IMAGE_SHAPE, n_epochs=1, **kw
    ),
}


@pytest.mark.parametrize("where", sorted(PARAM_CALLS))
@pytest.mark.parametrize(
    "param, value", [("p", v) for v in BAD_P] + [("lmbda", v) for v in BAD_LMBDA], ids=repr
)
def test_bad_p_and_lambda_rejected(where, param, value):
    match = rf"'{param}' parameter.*Got {re.escape(repr(value))}"
    with pytest.raises((ValueError, TypeError), match=match):
        PARAM_CALLS[where](**{param: value})


def test_set_params_validated_at_call_time():
    """Parameters set after construction are validated by the next call too."""
    coder = _coder().fit(_rows())
    with pytest.raises(ValueError, match=r"'p' parameter.*Got 3.0"):
        coder.set_params(p=3.0).fit(_rows())


# ---------------------------------------------------------------- connectivity
BAD_CONNECTIVITY = [
    ("wrong shape", np.ones((2, 2)), r"connectivity must have shape.*\(3, 2\).*\(2, 2\)"),
    ("3-D", np.ones((3, 2, 1)), r"connectivity must have shape.*\(3, 2\).*\(3, 2, 1\)"),
    ("transposed", np.ones((2, 3)), r"connectivity must have shape.*\(3, 2\).*\(2, 3\)"),
    ("value 2", np.array([[1, 2], [1, 0], [0, 1]]), r"connectivity.*binary.*got.*2"),
    ("value -1", np.array([[1, -1], [1, 0], [0, 1]]), r"connectivity.*binary.*got.*-1"),
    ("value 0.5", np.array([[1, 0.5], [1, 0], [0, 1]]), r"connectivity.*binary.*got.*0\.5"),
    ("value nan", np.array([[1, np.nan], [1, 0], [0, 1]]), r"connectivity.*binary.*got.*nan"),
    ("strings", np.array([["1", "0"], ["1", "1"], ["0", "1"]]), r"connectivity.*binary.*got.*<U1"),
    ("empty row", np.array([[1, 1], [0, 0], [0, 1]]),
     r"connectivity.*feature maps \[1\].*no input"),
    ("ragged", [[1, 1], [1], [0, 1]], r"connectivity"),
    ("unknown preset", "bogus", r"connectivity.*'bogus'"),
    ("random_0", "random_0", r"connectivity.*'random_0'"),
    ("random_3 of 2", "random_3", r"connectivity='random_3'" + _numbers(3) + r".*n_channels=2"),
    ("random_pairs of 1", "random_pairs", r"connectivity='random_2'.*only n_channels=1"),
]


@pytest.mark.parametrize(
    "call",
    [
        lambda g, X: make_connectivity(g, N_FILTERS, X.shape[1] // 36),
        lambda g, X: _coder(connectivity=g).fit(X),
        lambda g, X: conv_sparse_encode(
            X, _filters()[:, : X.shape[1] // 36], image_shape=IMAGE_SHAPE, connectivity=g
        ),
        lambda g, X: conv_dict_learning(
            X, N_FILTERS, 3, image_shape=IMAGE_SHAPE, connectivity=g, n_epochs=1
        ),
        lambda g, X: _network(connectivity=(g, "full")).fit(X),
    ],
    ids=["make_connectivity", "coder", "conv_sparse_encode", "conv_dict_learning", "network"],
)
@pytest.mark.parametrize("case, g, match", BAD_CONNECTIVITY, ids=[c[0] for c in BAD_CONNECTIVITY])
def test_malformed_connectivity_rejected(call, case, g, match):
    X = _rows()[:, :36] if case == "random_pairs of 1" else _rows()  # one channel
    with pytest.raises(ValueError, match=match):
        call(g, X)


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_connectivity("singles_and_pairs", 5, 3),
        lambda: _coder(n_filters=5, connectivity="singles_and_pairs").fit(
            np.zeros((2, 3 * 36)) + np.arange(3 * 36)
        ),
        lambda: _network(n_filters=(3, 5), connectivity=("full", "singles_and_pairs")).fit(
            _rows()
        ),
    ],
    ids=["make_connectivity", "coder", "network"],
)
def test_singles_and_pairs_needs_c_plus_c_choose_2_maps(call):
    with pytest.raises(ValueError, match=r"singles_and_pairs.*n_channels=3.*= 6, got n_filters=5"):
        call()


# ---------------------------------------------------------------- filters
@pytest.mark.parametrize(
    "call",
    [
        lambda f: _coder(filters_init=f).fit(_rows()),
        lambda f: conv_dict_learning(
            _rows(), N_FILTERS, 3, image_shape=IMAGE_SHAPE, filters_init=f, n_epochs=1
        ),
    ],
    ids=["coder", "conv_dict_learning"],
)
@pytest.mark.parametrize(
    "filters_init, match",
    [
        (np.ones((3, 2, 3, 4)), r"filters_init must have shape \(3, 2, 3, 3\), got \(3, 2, 3, 4\)"),
        (np.ones((2, 2, 3, 3)), r"filters_init must have shape \(3, 2, 3, 3\), got \(2, 2, 3, 3\)"),
        (np.ones((3, 1, 3, 3)), r"filters_init.*n_channels=2.*\(3, 1, 3, 3\)"),
        (np.full((3, 2, 3, 3), np.nan), r"filters_init contains NaN"),
        (np.full((3, 2, 3, 3), np.inf), r"filters_init contains infinity"),
        (np.zeros((3, 2, 3, 3)), r"filters_init.*zero"),
    ],
    ids=["width", "n_filters", "n_channels", "nan", "inf", "zero planes"],
)
def test_bad_filters_init_rejected(call, filters_init, match):
    with pytest.raises(ValueError, match=match):
        call(filters_init)


def test_filters_init_with_one_zero_connected_plane():
    """A zero plane cannot be projected to unit norm: either a ValueError naming
    the plane, or the fitted planes are unit norm anyway (never a crash)."""
    filters = _filters()
    filters[1, 0] = 0
    try:
        coder = _coder(filters_init=filters).fit(_rows())
    except ValueError as error:
        assert re.search(r"filters_init.*zero.*\(1, 0\)", str(error)), str(error)
    else:
        norms = np.sqrt(np.sum(coder.filters_**2, axis=(2, 3)))
        assert_allclose(norms, 1, rtol=1e-12)
    # a zero plane that the connectivity switches off is fine
    g = np.ones((N_FILTERS, N_CHANNELS), dtype=bool)
    g[1, 0] = False
    coder = _coder(filters_init=filters, connectivity=g).fit(_rows())
    assert_array_equal(coder.filters_[1, 0], 0)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("scale", [0.0, 1e-160, 1e-200])
def test_encode_with_zero_or_underflowing_filters(solver, scale):
    """F = 0 (numerically): the data term is constant, so z = 0 minimises.

    Either that exact answer or a ValueError naming the filters; never a
    ZeroDivisionError or NaN maps.
    """
    try:
        maps = conv_sparse_encode(
            _rows(), _filters() * scale, image_shape=IMAGE_SHAPE, solver=solver, **FAST
        )
    except ValueError as error:
        assert "filters" in str(error)
    else:
        assert_array_equal(maps, 0)


def test_init_of_encode_validated():
    with pytest.raises(ValueError, match=r"init must have shape \(4, 192\), got \(4, 5\)"):
        conv_sparse_encode(_rows(), _filters(), image_shape=IMAGE_SHAPE, init=np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"init contains NaN"):
        conv_sparse_encode(
            _rows(), _filters(), image_shape=IMAGE_SHAPE, init=np.full((4, 192), np.nan)
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_filters_rejected_in_encode(bad):
    filters = _filters()
    filters[0, 0, 1, 1] = bad
    with warnings.catch_warnings():
        # sklearn's finiteness check may itself warn while summing inf - inf
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match=r"filters contains (NaN|infinity)"):
            conv_sparse_encode(_rows(), filters, image_shape=IMAGE_SHAPE)


@pytest.mark.parametrize("layer", [0, 3, -3, 1.0, True, "1", None])
def test_bad_layer_numbers(network, layer):
    match = rf"layer must be a layer number in 1\.\.2.*got {re.escape(repr(layer))}"
    with pytest.raises(ValueError, match=match):
        network.project_filters(layer)
    with pytest.raises(ValueError, match=match):
        network.project(np.zeros((1, MAP_FEATURES)), layer)


def test_per_layer_parameter_count_checked():
    with pytest.raises(ValueError, match=r"lmbda=\(1.0, 2.0, 3.0\) has 3 entries.*2 layers"):
        _network(lmbda=(1.0, 2.0, 3.0)).fit(_rows())


# ---------------------------------------------------------------- no side effects
def _arrays(obj, seen=None):
    """Every ndarray reachable from an estimator's attributes (recursively)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _arrays(v, seen)]
    if isinstance(obj, (list, tuple)):
        return [a for v in obj for a in _arrays(v, seen)]
    if hasattr(obj, "__dict__"):
        return _arrays(vars(obj), seen)
    return []


READ_CALLS = {
    "coder.transform": lambda c, n, X: c.transform(X),
    "coder.score": lambda c, n, X: np.array(c.score(X)),
    "coder.inverse_transform": lambda c, n, X: c.inverse_transform(c.transform(X)),
    "network.transform": lambda c, n, X: n.transform(X),
    "network.transform(layers)": lambda c, n, X: n.transform(X, layers=[1, 2])[0],
    "network.score": lambda c, n, X: np.array(n.score(X)),
    "network.inverse_transform": lambda c, n, X: n.inverse_transform(n.transform(X)),
    "network.project(1)": lambda c, n, X: n.project(c.transform(X), 1),
    "network.project_filters(1)": lambda c, n, X: n.project_filters(1),
    "network.project_filters(2)": lambda c, n, X: n.project_filters(2),
}


@pytest.mark.parametrize("call", sorted(READ_CALLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_read_only_calls_modify_nothing(coder, network, call, dtype):
    X = _rows(seed=3, dtype=dtype)
    X_copy = X.copy()
    X.setflags(write=False)  # an in-place write would raise
    before = joblib.hash((coder, network))
    out = READ_CALLS[call](coder, network, X)
    assert joblib.hash((coder, network)) == before, "a fitted attribute changed"
    assert_array_equal(X, X_copy)
    assert np.all(np.isfinite(out))
    for array in _arrays(coder) + _arrays(network) + [X]:
        assert not np.shares_memory(out, array), "the output aliases X or a fitted attribute"


FIT_CALLS = {
    "coder.fit": lambda X: _coder().fit(X),
    "coder.fit(scale_input)": lambda X: _coder(scale_input=True).fit(X),
    "coder.partial_fit": lambda X: _coder().partial_fit(X).partial_fit(X),
    "network.fit": lambda X: _network().fit(X),
    "LocalContrastNormalizer": lambda X: LocalContrastNormalizer(IMAGE_SHAPE).fit(X),
}


@pytest.mark.parametrize("call", sorted(FIT_CALLS))
def test_fit_modifies_neither_x_nor_aliases_it(call):
    X = _rows(seed=4)
    X_copy = X.copy()
    X.setflags(write=False)
    estimator = FIT_CALLS[call](X)
    assert_array_equal(X, X_copy)
    for array in _arrays(estimator):
        assert not np.shares_memory(array, X), "a fitted attribute aliases X"


def test_functions_modify_nothing():
    X, filters = _rows(seed=5), _filters()
    g = np.ones((N_FILTERS, N_CHANNELS), dtype=np.int64)
    init = np.zeros((len(X), MAP_FEATURES))
    inputs = (X, filters, g, init)
    copies = [a.copy() for a in inputs]
    for a in inputs:
        a.setflags(write=False)
    maps = conv_sparse_encode(
        X, filters, image_shape=IMAGE_SHAPE, connectivity=g, init=init, **FAST
    )
    learned_maps, learned, costs = conv_dict_learning(
        X, N_FILTERS, 3, image_shape=IMAGE_SHAPE, connectivity=g, filters_init=filters,
        n_epochs=1, **FAST,
    )
    for a, c in zip(inputs, copies):
        assert_array_equal(a, c)
    for out in (maps, learned_maps, learned, costs):
        for a in inputs:
            assert not np.shares_memory(out, a)
    # images_to_rows / rows_to_images are documented views; LCN is not
    images = X.reshape(len(X), N_CHANNELS, *IMAGE_SHAPE)
    normalized = local_contrast_normalize(images, channel_axis=1)
    assert not np.shares_memory(normalized, X)
    assert_array_equal(X, copies[0])


def _fitted_arrays(estimator):
    return _arrays({k: v for k, v in vars(estimator).items() if k.endswith("_")})


def test_user_parameters_are_not_aliased_by_fitted_attributes():
    """Changing the arrays passed as parameters later must not change the model."""
    filters = _filters()
    g = np.ones((N_FILTERS, N_CHANNELS), dtype=bool)
    coder = _coder(filters_init=filters, connectivity=g).fit(_rows())
    net = _network(connectivity=(g, "random_pairs")).fit(_rows())
    layers = [layer for _, layer in net.pipeline_.steps]
    for estimator in [coder, *layers]:
        for array in _fitted_arrays(estimator):
            assert not np.shares_memory(array, filters)
            assert not np.shares_memory(array, g)
    assert_array_equal(filters, _filters())
    assert g.all()


# ---------------------------------------------------------------- extreme values
def _finite(value):
    return np.all(np.isfinite(np.asarray(value, dtype=np.float64)))


EXTREME_CALLS = {
    "coder.fit": lambda X: _coder().fit(X).filters_,
    "coder.fit.cost_history_": lambda X: _coder().fit(X).cost_history_,
    "coder(scale_input).fit+transform": lambda X: _coder(scale_input=True).fit(X).transform(X),
    "coder.partial_fit": lambda X: _coder().partial_fit(X).filters_,
    "coder.transform": lambda X: _coder().fit(_rows()).transform(X),
    "coder.score": lambda X: _coder().fit(_rows()).score(X),
    "coder.inverse_transform": lambda X: _coder().fit(_rows()).inverse_transform(
        np.resize(X, (len(X), MAP_FEATURES))
    ),
    "network.fit+transform": lambda X: _network().fit(X).transform(X),
    "network.project_filters": lambda X: _network().fit(X).project_filters(2),
    "network.score": lambda X: _network().fit(X).score(X),
    "conv_sparse_encode": lambda X: conv_sparse_encode(X, _filters(), image_shape=IMAGE_SHAPE),
    "conv_sparse_encode(p=0.8)": lambda X: conv_sparse_encode(
        X, _filters(), image_shape=IMAGE_SHAPE, p=0.8, **FAST
    ),
    **{
        f"conv_sparse_encode({solver})": (
            lambda solver: lambda X: conv_sparse_encode(
                X, _filters(), image_shape=IMAGE_SHAPE, solver=solver, **FAST
            )
        )(solver)
        for solver in sorted(SOLVERS)
    },
    "conv_dict_learning": lambda X: conv_dict_learning(
        X, N_FILTERS, 3, image_shape=IMAGE_SHAPE, n_epochs=2, random_state=0, **FAST
    )[2],
    "LocalContrastNormalizer": lambda X: LocalContrastNormalizer(IMAGE_SHAPE).fit_transform(X),
}


@pytest.mark.parametrize("call", sorted(EXTREME_CALLS))
@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_huge_and_tiny_values_give_finite_results(call, scale):
    """RuntimeWarnings from skdeconv are errors (pyproject), so overflow fails too."""
    assert _finite(EXTREME_CALLS[call](_rows() * scale))


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("scale", [1e20, 1e30])
def test_huge_float32_values_encode_like_float64(solver, scale):
    """Squares of 1e20 overflow float32: the solvers' norms and inner products
    must not (today they do, every sample "converges" after one step and the
    maps are silently wrong by ~90%).  lambda scales with the data, so the
    problem is that of unit data (about a third of the maps non-zero): its
    solution, not the path of an unconverged solver, is compared."""
    X = _rows() * scale
    params = dict(image_shape=IMAGE_SHAPE, solver=solver, lmbda=4.0 / scale, max_iter=500,
                  tol=1e-6)
    expected = conv_sparse_encode(X, _filters(), **params)
    maps = conv_sparse_encode(X.astype(np.float32), _filters(dtype=np.float32), **params)
    assert maps.dtype == np.float32
    assert _finite(maps)
    assert_allclose(maps, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_huge_float32_values_fit_like_float64():
    X = _rows() * 1e20
    expected = _coder(n_epochs=3).fit(X)
    coder = _coder(n_epochs=3).fit(X.astype(np.float32))
    assert _finite(coder.filters_) and _finite(coder.cost_history_)
    assert_allclose(coder.filters_, expected.filters_, atol=1e-4)
    assert_allclose(coder.cost_history_, expected.cost_history_, rtol=1e-4)


@pytest.mark.parametrize(
    "dtype, scale", [(np.float32, 1e20), (np.float32, 1e-20), (np.float64, 1e-200)]
)
def test_local_contrast_normalization_is_scale_invariant(dtype, scale):
    """LCN (with the default relative floor) does not depend on the scale of a
    plane; its local variances must not overflow or underflow."""
    images = np.random.RandomState(0).standard_normal((3, 8, 8))
    expected = local_contrast_normalize(images)
    normalized = local_contrast_normalize((images * scale).astype(dtype))
    assert normalized.dtype == dtype
    assert_allclose(normalized, expected, atol=1e-4)


# ---------------------------------------------------------------- long fits
@pytest.mark.parametrize("fit_algorithm", ["interleaved", "alternating"])
@pytest.mark.parametrize("verbose, epochs", [(2, range(1, 13)), (1, [10, 12])])
def test_verbose_fit_reports_epochs_with_cost_and_time(capsys, fit_algorithm, verbose, epochs):
    """verbose=1: every 10th epoch and the last; verbose=2: every epoch."""
    _coder(n_epochs=12, verbose=verbose, fit_algorithm=fit_algorithm).fit(_rows())
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(epochs)
    for epoch, line in zip(epochs, lines):
        assert re.search(rf"epoch {epoch}/12\b.*cost [-+.\deE]+.*\d+\.\d+ s", line), line


def test_verbose_network_reports_every_layer(capsys):
    _network(verbose=1).fit(_rows())
    out = capsys.readouterr().out
    assert re.search(r"layer 1/2.*cost.*\d s", out) and re.search(r"layer 2/2.*cost.*\d s", out)


def test_silent_by_default(capsys):
    _coder().fit(_rows())
    _network().fit(_rows())
    assert capsys.readouterr().out == ""


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_converged_fit_does_not_warn():
    X = _rows()
    coder = _coder(max_iter=2000, tol=1e-3, n_epochs=2).fit(X)
    coder.transform(X)


@pytest.mark.parametrize(
    "call",
    [
        lambda X: _coder(
            max_iter=2, tol=1e-12, n_epochs=2, fit_algorithm="alternating"
        ).fit(X),
        lambda X: _coder(max_iter=2, tol=1e-12).partial_fit(X),
        lambda X: conv_dict_learning(
            X, N_FILTERS, 3, image_shape=IMAGE_SHAPE, max_iter=2, tol=1e-12, n_epochs=2,
            fit_algorithm="alternating",
        ),
    ],
    ids=["fit", "partial_fit", "conv_dict_learning"],
)
def test_fit_stops_at_max_iter_with_a_convergence_warning(call):
    """max_iter bounds map inference in alternating fit too; not reaching tol
    must be said.  (Interleaved fit runs one map iteration per epoch: there
    is no tol to reach, and it does not warn.)"""
    with pytest.warns(ConvergenceWarning, match=r"tol=1e-12.*max_iter=2"):
        result = call(_rows())
    assert result is not None


@pytest.mark.parametrize("method", ["transform", "score"])
def test_transform_stops_at_max_iter_with_a_warning_pointing_at_the_caller(method):
    coder = _coder().fit(_rows())
    coder.set_params(max_iter=3, tol=1e-12)
    with pytest.warns(ConvergenceWarning, match=r"tol=1e-12.*max_iter=3.*4 of 4") as record:
        getattr(coder, method)(_rows())
    assert coder.n_iter_ == 2  # epochs of fit, untouched
    # the warning is attributed to the user's line, not to a library frame
    assert record[0].filename == __file__
