"""ConvSparseCoder: shapes, exact reconstruction, optimality, dtypes, errors."""

import copy
from functools import lru_cache

import numpy as np
import pytest
from scipy import signal
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skdeconv import ConvSparseCoder, conv_dict_learning, conv_sparse_encode
from skdeconv import _coder as coder_module
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import local_contrast_normalize

# small max_iter keeps these tests fast; convergence itself is tested explicitly
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@lru_cache(maxsize=None)
def _fruit_rows(size=32, as_gray=True):
    """Contrast-normalised fruit crops as rows (10, C * size * size)."""
    images = load_zeiler2010("fruit", as_gray=as_gray)
    if as_gray:
        images = local_contrast_normalize(images)
    else:
        images = local_contrast_normalize(images, channel_axis=-1)
        images = np.moveaxis(images, -1, 1)  # channels first
    start = (100 - size) // 2
    crop = images[..., start : start + size, start : start + size]
    rows = np.ascontiguousarray(crop.reshape(len(crop), -1))
    rows.setflags(write=False)
    return rows


def _signals(n_samples=6, n_features=20, seed=0, dtype=np.float64):
    return np.random.RandomState(seed).standard_normal((n_samples, n_features)).astype(dtype)


def _brute_reconstruct(rows, filters, g, map_shape):
    """sum_k g[k,c] convolve_valid(z_k, f_kc) per channel, flattened per row."""
    n_filters, n_channels = g.shape
    out = []
    for row in rows:
        maps = row.reshape((n_filters,) + map_shape)
        out.append([
            sum(signal.convolve(maps[k], filters[k, c], mode="valid", method="direct")
                for k in range(n_filters) if g[k, c])
            for c in range(n_channels)
        ])
    return np.array(out).reshape(len(rows), -1)


def _brute_costs(coder, X, maps):
    """lambda/2 ||F z - x||^2 + sum |z|^p per sample, by direct convolution."""
    recon = _brute_reconstruct(
        maps, coder.filters_, coder.connectivity_, coder.feature_map_shape_[1:]
    )
    data = 0.5 * coder.lmbda * np.sum((recon - X) ** 2, axis=1)
    return data + np.sum(np.abs(maps) ** coder.p, axis=1)


def _plane_norms(filters):
    return np.sqrt(np.sum(filters**2, axis=tuple(range(2, filters.ndim))))


# ------------------------------------------------------------------ shapes
def test_1d_default_geometry():
    X = _signals(n_features=20)
    coder = ConvSparseCoder(n_filters=3, filter_shape=5, n_epochs=2, random_state=0).fit(X)
    assert coder.image_shape_ == (20,) and coder.n_channels_ == 1
    assert coder.filters_.shape == (3, 1, 5)
    assert coder.feature_map_shape_ == (3, 24)
    assert coder.connectivity_.shape == (3, 1) and coder.connectivity_.all()
    maps = coder.transform(X)
    assert maps.shape == (6, 72)
    assert coder.inverse_transform(maps).shape == (6, 20)
    assert coder.get_feature_names_out().shape == (72,)
    assert coder.get_feature_names_out()[0] == "convsparsecoder0"


def test_filter_longer_than_signal():
    X = _signals(n_features=3)
    coder = ConvSparseCoder(n_filters=2, filter_shape=7, n_epochs=1, random_state=0).fit(X)
    assert coder.feature_map_shape_ == (2, 9)
    maps = coder.transform(X)
    np.testing.assert_allclose(
        coder.inverse_transform(maps),
        _brute_reconstruct(maps, coder.filters_, coder.connectivity_, (9,)),
        atol=1e-12,
    )


def test_gray_2d_shapes():
    X = _fruit_rows(16)[:4]
    coder = ConvSparseCoder(
        n_filters=4, filter_shape=(3, 5), image_shape=(16, 16), n_epochs=1, random_state=0
    ).fit(X)
    assert coder.filters_.shape == (4, 1, 3, 5)
    assert coder.feature_map_shape_ == (4, 18, 20)
    maps = coder.transform(X)
    assert maps.shape == (4, 4 * 18 * 20)
    assert coder.inverse_transform(maps).shape == X.shape


RGB_CONNECTIVITY = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 0, 1]])


@lru_cache(maxsize=None)
def _rgb_coder():
    X = _fruit_rows(12, as_gray=False)[:4]
    coder = ConvSparseCoder(
        n_filters=4, filter_shape=3, image_shape=(12, 12), connectivity=RGB_CONNECTIVITY,
        lmbda=5.0, n_epochs=3, random_state=0,
    ).fit(X)
    return coder, X


def test_rgb_custom_connectivity():
    coder, X = _rgb_coder()
    g = RGB_CONNECTIVITY.astype(bool)
    assert coder.n_channels_ == 3
    np.testing.assert_array_equal(coder.connectivity_, g)
    assert coder.filters_.shape == (4, 3, 3, 3)
    np.testing.assert_array_equal(coder.filters_[~g], 0)  # exact zeros
    np.testing.assert_allclose(_plane_norms(coder.filters_)[g], 1, rtol=1e-12)
    maps = coder.transform(X)
    assert maps.shape == (4, 4 * 14 * 14)
    recon = coder.inverse_transform(maps)
    assert recon.shape == X.shape == (4, 3 * 12 * 12)
    np.testing.assert_allclose(recon, _brute_reconstruct(maps, coder.filters_, g, (14, 14)), atol=1e-12)


@pytest.mark.parametrize(
    "preset, n_filters", [("singles_and_pairs", 6), ("random_pairs", 5), ("random_1", 4)]
)
def test_rgb_presets(preset, n_filters):
    X = _fruit_rows(8, as_gray=False)[:3]
    coder = ConvSparseCoder(
        n_filters=n_filters, filter_shape=3, image_shape=(8, 8), connectivity=preset,
        n_epochs=1, max_iter=20, random_state=0,
    ).fit(X)
    g = coder.connectivity_
    assert g.shape == (n_filters, 3)
    np.testing.assert_array_equal(coder.filters_[~g], 0)
    other = ConvSparseCoder(**coder.get_params()).fit(X)
    np.testing.assert_array_equal(other.connectivity_, g)
    np.testing.assert_array_equal(other.filters_, coder.filters_)


# ------------------------------------------------------------------ exactness
def test_inverse_transform_exact_arbitrary_maps():
    coder, X = _rgb_coder()
    maps = np.random.RandomState(1).standard_normal((3, coder._n_features_out))
    np.testing.assert_allclose(
        coder.inverse_transform(maps),
        _brute_reconstruct(maps, coder.filters_, coder.connectivity_, (14, 14)),
        rtol=1e-12, atol=1e-12,
    )


def test_transform_kkt_on_fruit():
    """transform at tight tolerance satisfies the p = 1 optimality conditions
    (gradient by direct convolution, independent of the FFT operator)."""
    X = _fruit_rows(32)[:3]
    coder = ConvSparseCoder(
        n_filters=4, filter_shape=5, image_shape=(32, 32), lmbda=5.0, n_epochs=2, random_state=0
    ).fit(X)
    coder.set_params(max_iter=5000, tol=1e-8)
    maps = coder.transform(X[:1])
    z = maps.reshape(coder.feature_map_shape_)
    residual = (coder.inverse_transform(maps) - X[:1]).reshape(32, 32)
    gradient = coder.lmbda * np.array([
        signal.correlate(residual, coder.filters_[k, 0], mode="full", method="direct") for k in range(4)
    ])
    violation = np.where(z == 0, np.maximum(np.abs(gradient) - 1, 0), np.abs(gradient + np.sign(z)))
    p99 = np.percentile(violation, 99)
    print(f"\ntransform KKT on fruit 32x32 (4 learned 5x5 filters): p99 {p99:.2e}, "
          f"max {violation.max():.2e}, "
          f"density {np.mean(z != 0):.3f}")
    assert 0.01 < np.mean(z != 0) < 0.9
    assert p99 < 1e-5


@pytest.mark.parametrize("p", [1.0, 0.8])
def test_score_is_minus_mean_cost(p):
    X = _signals(n_features=25, seed=2)
    coder = ConvSparseCoder(
        n_filters=3, filter_shape=4, lmbda=3.0, p=p, n_epochs=2, random_state=0
    ).fit(X)
    maps = coder.transform(X)
    expected = -np.mean(_brute_costs(coder, X, maps))
    assert coder.score(X) == pytest.approx(expected, rel=1e-12)


def test_cost_history_non_increasing_and_n_iter():
    X = _fruit_rows(16)[:6]
    coder = ConvSparseCoder(
        n_filters=4, filter_shape=5, image_shape=(16, 16), lmbda=5.0, n_epochs=6,
        fit_algorithm="alternating", random_state=0,
    ).fit(X)
    history = coder.cost_history_
    assert history.shape == (6,)
    assert np.all(np.diff(history) <= 1e-12 * history[0]), history
    assert history[-1] < history[0]
    assert isinstance(coder.n_iter_, int) and coder.n_iter_ == 6
    # the last entry is the mean cost of the learned filters on the fitted maps,
    # which transform can only improve upon (it solves the map problem again)
    assert -coder.score(X) <= history[-1] * (1 + 1e-6)


def test_fit_matches_conv_dict_learning():
    X = _signals(n_features=18, seed=3)
    params = dict(n_filters=3, filter_shape=4, lmbda=2.0, n_epochs=3, random_state=0)
    coder = ConvSparseCoder(**params).fit(X)
    _, filters, history = conv_dict_learning(X, **params)
    np.testing.assert_array_equal(coder.filters_, filters)
    np.testing.assert_array_equal(coder.cost_history_, history)
    np.testing.assert_array_equal(
        coder.transform(X), conv_sparse_encode(X, coder.filters_, lmbda=2.0)
    )


def test_filters_init_used_and_normalised():
    X = _signals(n_features=12)
    init = np.random.RandomState(5).standard_normal((2, 1, 3)) * 4
    coder = ConvSparseCoder(n_filters=2, filter_shape=3, filters_init=init, n_epochs=1, max_iter=1)
    coder.fit(X)
    assert coder.filters_.shape == (2, 1, 3)
    np.testing.assert_allclose(_plane_norms(coder.filters_), 1, rtol=1e-12)
    with pytest.raises(ValueError, match=r"filters_init.*\(2, 1, 3\).*\(2, 1, 4\)"):
        ConvSparseCoder(n_filters=2, filter_shape=3, filters_init=np.ones((2, 1, 4))).fit(X)


# ------------------------------------------------------------------ parameters at call time
def test_set_params_max_iter_tol_change_transform():
    X = _fruit_rows(16)[:3]
    coder = ConvSparseCoder(
        n_filters=4, filter_shape=5, image_shape=(16, 16), lmbda=5.0, n_epochs=1, random_state=0
    ).fit(X)
    filters = coder.filters_.copy()
    tight = coder.set_params(max_iter=3000, tol=1e-10).transform(X)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        short = coder.set_params(max_iter=2).transform(X)
    loose = coder.set_params(max_iter=3000, tol=0.5).transform(X)
    assert not np.allclose(short, tight, atol=1e-6)
    assert not np.allclose(loose, tight, atol=1e-6)
    np.testing.assert_array_equal(coder.filters_, filters)  # no refit
    # the costs order as the accuracy
    costs = [np.mean(_brute_costs(coder, X, maps)) for maps in (tight, loose, short)]
    assert costs[0] <= costs[1] and costs[0] < costs[2]


def test_solver_continuation_close_to_fista():
    X = _fruit_rows(16)[:2]
    coder = ConvSparseCoder(
        n_filters=4, filter_shape=5, image_shape=(16, 16), lmbda=5.0, n_epochs=1, random_state=0,
        max_iter=4000, tol=1e-7,
    ).fit(X)
    fista_cost = -coder.score(X)
    coder.set_params(solver="continuation", max_iter=6000, tol=1e-6)
    cont_cost = -coder.score(X)
    assert abs(cont_cost - fista_cost) <= 0.01 * fista_cost


# ------------------------------------------------------------------ dtypes
def test_float32_in_float32_out():
    X = _fruit_rows(16)[:3].astype(np.float32)
    coder = ConvSparseCoder(
        n_filters=3, filter_shape=3, image_shape=(16, 16), n_epochs=2, random_state=0
    ).fit(X)
    assert coder.filters_.dtype == np.float32
    maps = coder.transform(X)
    assert maps.dtype == np.float32
    recon = coder.inverse_transform(maps)
    assert recon.dtype == np.float32
    assert coder.fit_transform(X).dtype == np.float32
    # float32 maps and float64 maps agree to float32 accuracy
    coder64 = ConvSparseCoder(**coder.get_params()).fit(X.astype(np.float64))
    maps64 = coder64.transform(X.astype(np.float64))
    assert maps64.dtype == np.float64
    assert coder64.inverse_transform(maps).dtype == np.float32
    assert coder64.transform(X).dtype == np.float32


def test_integer_input_converted():
    X = np.random.RandomState(0).randint(-3, 4, size=(5, 10))
    coder = ConvSparseCoder(n_filters=2, filter_shape=3, n_epochs=1, max_iter=20).fit(X)
    assert coder.transform(X).dtype == np.float64


# ------------------------------------------------------------------ model selection, online
def test_grid_search_over_lmbda():
    X = _signals(n_samples=8, n_features=16, seed=4)
    search = GridSearchCV(
        ConvSparseCoder(n_filters=2, filter_shape=3, n_epochs=1, max_iter=50, random_state=0),
        {"lmbda": [0.5, 2.0, 8.0]}, cv=2,
    ).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    # the model's own score prefers the smallest lambda (documented behaviour)
    assert np.all(np.diff(scores) < 0)
    assert search.best_params_ == {"lmbda": 0.5}
    assert search.best_estimator_.lmbda == 0.5


def test_partial_fit_mini_batches():
    X = _fruit_rows(16)
    coder = ConvSparseCoder(n_filters=3, filter_shape=5, image_shape=(16, 16), max_iter=50, random_state=0)
    for batch in (X[0:3], X[3:6], X[6:10]):
        coder.partial_fit(batch)
        np.testing.assert_allclose(_plane_norms(coder.filters_), 1, rtol=1e-12)
    assert coder.n_steps_ == 3 and coder.n_iter_ == 3
    assert coder.cost_history_.shape == (3,)
    assert coder.transform(X).shape == (10, 3 * 20 * 20)
    with pytest.raises(ValueError, match="256"):
        coder.partial_fit(X[:, :100])


def test_partial_fit_deterministic_and_masked():
    """Online learning honours the connectivity and the seed."""
    X = _fruit_rows(8, as_gray=False)
    g = RGB_CONNECTIVITY.astype(bool)
    params = dict(
        n_filters=4, filter_shape=3, image_shape=(8, 8), connectivity=g, max_iter=40,
        random_state=0,
    )
    first, second = ConvSparseCoder(**params), ConvSparseCoder(**params)
    for batch in (X[:4], X[4:8]):
        first.partial_fit(batch)
        second.partial_fit(batch)
        np.testing.assert_array_equal(first.filters_[~g], 0)
        np.testing.assert_allclose(_plane_norms(first.filters_)[g], 1, rtol=1e-12)
    np.testing.assert_array_equal(first.filters_, second.filters_)
    assert first.filters_.dtype == np.float64


def test_partial_fit_float32():
    X = _fruit_rows(8)[:4].astype(np.float32)
    coder = ConvSparseCoder(n_filters=2, filter_shape=3, image_shape=(8, 8), max_iter=30, random_state=0)
    coder.partial_fit(X).partial_fit(X)
    assert coder.filters_.dtype == np.float32
    assert coder.transform(X).dtype == np.float32


# ------------------------------------------------------------------ no side effects
def test_x_not_modified_and_fitted_attributes_untouched():
    X = _signals(n_features=14, seed=7)
    X_copy = X.copy()
    coder = ConvSparseCoder(n_filters=2, filter_shape=3, n_epochs=2, random_state=0).fit(X)
    np.testing.assert_array_equal(X, X_copy)
    state = copy.deepcopy(coder.__dict__)
    maps = coder.transform(X)
    maps_copy = maps.copy()
    coder.inverse_transform(maps)
    coder.score(X)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(maps, maps_copy)
    assert coder.__dict__.keys() == state.keys()
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(coder.__dict__[key], value)
            assert coder.__dict__[key].dtype == value.dtype
        else:
            assert coder.__dict__[key] == value, key
    # read-only input works (no in-place writes)
    X_ro = X.copy()
    X_ro.setflags(write=False)
    coder.transform(X_ro)
    coder.partial_fit(X_ro)


def test_transform_independent_of_batch():
    coder, X = _rgb_coder()
    maps = coder.transform(X)
    order = np.array([2, 0, 3, 1])
    np.testing.assert_array_equal(coder.transform(X[order]), maps[order])
    np.testing.assert_array_equal(coder.transform(X[1:2]), maps[1:2])


def test_n_jobs_gives_same_maps():
    X = _fruit_rows(16)[:5]
    coder = ConvSparseCoder(
        n_filters=3, filter_shape=3, image_shape=(16, 16), n_epochs=1, random_state=0
    ).fit(X)
    serial = coder.transform(X)
    parallel = coder.set_params(n_jobs=2).transform(X)
    np.testing.assert_array_equal(parallel, serial)


def test_scale_input_round_trip():
    X = _signals(n_features=16, seed=8) * 40
    coder = ConvSparseCoder(
        n_filters=2, filter_shape=3, scale_input=True, n_epochs=1, random_state=0
    ).fit(X)
    assert coder.input_scale_ == pytest.approx(np.abs(X).max())
    maps = coder.transform(X)
    expected = _brute_reconstruct(maps, coder.filters_, coder.connectivity_, (18,))
    expected *= coder.input_scale_
    np.testing.assert_allclose(
        coder.inverse_transform(maps), expected, rtol=1e-12, atol=1e-12 * np.abs(X).max()
    )
    # maps are those of X / scale for an unscaled coder with the same filters
    plain = conv_sparse_encode(X / coder.input_scale_, coder.filters_, lmbda=coder.lmbda_)
    np.testing.assert_allclose(maps, plain, atol=1e-12)


# ------------------------------------------------------------------ errors
def test_error_image_shape_does_not_divide():
    X = _signals(n_features=50)
    with pytest.raises(ValueError, match=r"(?=.*\b49\b)(?=.*\b50\b)"):
        ConvSparseCoder(image_shape=(7, 7)).fit(X)


def test_error_filter_shape_rank():
    X = _signals(n_features=64)
    with pytest.raises(ValueError, match=r"filter_shape.*3 axes.*2 spatial axes"):
        ConvSparseCoder(image_shape=(8, 8), filter_shape=(3, 3, 3)).fit(X)


@pytest.mark.parametrize("bad", [(0, 3), (2.5,), ("a",), ()])
def test_error_bad_shape_values(bad):
    X = _signals(n_features=64)
    with pytest.raises(ValueError, match="filter_shape"):
        ConvSparseCoder(image_shape=(8,) * max(len(bad), 1), filter_shape=bad).fit(X)
    with pytest.raises(ValueError, match="image_shape"):
        ConvSparseCoder(image_shape=bad).fit(X)


def test_error_bad_connectivity_shape():
    X = _signals(n_features=20)
    with pytest.raises(ValueError, match=r"connectivity.*\(3, 1\).*\(3, 2\)"):
        ConvSparseCoder(n_filters=3, connectivity=np.ones((3, 2))).fit(X)


def test_error_singles_and_pairs_count():
    X = _fruit_rows(8, as_gray=False)[:2]
    with pytest.raises(ValueError, match=r"(?=.*\b6\b)(?=.*n_filters=5)"):
        ConvSparseCoder(n_filters=5, image_shape=(8, 8), connectivity="singles_and_pairs").fit(X)


@pytest.mark.parametrize(
    "param, value",
    [("p", 0.0), ("p", 1.5), ("p", -1), ("lmbda", 0.0), ("lmbda", -2.0), ("lmbda", "big"),
     ("solver", "admm?"), ("max_iter", 0), ("tol", -1e-3), ("n_epochs", 0), ("n_filters", 0),
     ("connectivity", "bogus")],
)
def test_error_invalid_parameters(param, value):
    X = _signals(n_features=10)
    with pytest.raises(InvalidParameterError, match=param):
        ConvSparseCoder(**{param: value}).fit(X)


def test_error_wrong_width():
    X = _signals(n_features=12)
    coder = ConvSparseCoder(n_filters=2, filter_shape=3, n_epochs=1, max_iter=10).fit(X)
    with pytest.raises(ValueError, match=r"(?=.*\b13\b)(?=.*\b12\b)"):
        coder.transform(_signals(n_features=13))
    with pytest.raises(ValueError, match=r"(?=.*\b27\b)(?=.*\b28\b)"):
        coder.inverse_transform(np.zeros((2, 27)))
    with pytest.raises(ValueError, match=r"(?=.*\b13\b)(?=.*\b12\b)"):
        coder.score(_signals(n_features=13))


def test_error_nan():
    X = _signals(n_features=12)
    X_nan = X.copy()
    X_nan[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ConvSparseCoder(n_filters=2, filter_shape=3).fit(X_nan)
    coder = ConvSparseCoder(n_filters=2, filter_shape=3, n_epochs=1, max_iter=10).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        coder.transform(X_nan)
    with pytest.raises(ValueError, match="infinity|NaN"):
        coder.inverse_transform(np.full((1, 28), np.inf))


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ConvSparseCoder().transform(_signals())
    with pytest.raises(NotFittedError):
        ConvSparseCoder().inverse_transform(_signals())


@pytest.mark.parametrize("fit_algorithm", ["interleaved", "alternating"])
def test_fit_transform_starts_from_the_training_maps(monkeypatch, fit_algorithm):
    """p = 1: inference starts from the maps training ends with (not
    zero), and reaches the maps of fit(X).transform(X) to within tol."""
    X = _fruit_rows(size=24)[:4]
    params = dict(n_filters=4, filter_shape=5, image_shape=(24, 24), n_epochs=5,
                  fit_algorithm=fit_algorithm, max_iter=20000, tol=1e-8, random_state=0)
    expected = ConvSparseCoder(**params).fit(X).transform(X)
    starts = []
    original = coder_module._encode
    monkeypatch.setattr(coder_module, "_encode",
                        lambda *args, init, **kw: starts.append(init) or original(
                            *args, init=init, **kw))
    coder = ConvSparseCoder(**params)
    maps = coder.fit_transform(X)
    assert starts[-1] is not None and np.count_nonzero(starts[-1])
    np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("params", [dict(p=0.5), dict(fit_algorithm="online", batch_size=2)])
def test_fit_transform_is_fit_then_transform_when_not_warm_started(params):
    """p < 1 (the local optimum depends on the start) and online learning
    (no training maps): from zero, the numbers of fit(X).transform(X)."""
    X = _fruit_rows(size=24)[:4]
    params = dict(n_filters=3, filter_shape=5, image_shape=(24, 24), n_epochs=3,
                  random_state=0, **params)
    expected = ConvSparseCoder(**params).fit(X).transform(X)
    np.testing.assert_array_equal(ConvSparseCoder(**params).fit_transform(X), expected)
