"""What a user gets without tuning (issue #12): scale-free lmbda='auto',
connectivity for any depth checked before training, dead layers warned,
one ConvergenceWarning per public call attributed to the caller."""

import functools
import importlib.util
import inspect
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skdeconv import (
    ConvSparseCoder,
    DeadLayerWarning,
    DeconvNetworkTransformer,
    conv_sparse_encode,
)
from skdeconv._fft_ops import ConvOperator
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import LocalContrastNormalizer, images_to_rows


@pytest.fixture(scope="module")
def fruit_crops():
    images = load_zeiler2010("fruit", as_gray=True)[:4, 20:60, 20:60]
    X = images_to_rows(images)
    return LocalContrastNormalizer(image_shape=(40, 40)).fit_transform(X)


def _coder(**params):
    defaults = {"n_filters": 4, "filter_shape": 5, "image_shape": (40, 40),
                "n_epochs": 20, "random_state": 0}
    return ConvSparseCoder(**{**defaults, **params})


# ------------------------------------------------------------------ lmbda
def test_lmbda_min_is_the_largest_weight_with_all_maps_zero(fruit_crops):
    """p = 1: at lmbda_min_ the maps are zero; just above it they are not."""
    coder = _coder(lmbda=1.0, n_epochs=1).fit(fruit_crops)
    Y = fruit_crops.reshape(len(fruit_crops), 1, 40, 40)
    # lmbda_min_ is taken at the INITIAL filters: recompute it there.
    initial = _coder(lmbda=1.0, n_epochs=1)
    initial_filters = initial._initialize(fruit_crops, np.random.RandomState(0))
    op0 = ConvOperator(initial_filters, initial.connectivity_, (40, 40))
    lmbda_min = 1 / np.abs(op0.adjoint(Y)).max()
    np.testing.assert_allclose(coder.lmbda_min_, lmbda_min, rtol=1e-12)
    for factor, expect_zero in ((0.999, True), (1.05, False)):
        maps = conv_sparse_encode(
            fruit_crops, initial_filters, image_shape=(40, 40),
            lmbda=factor * lmbda_min, solver="fista", max_iter=500, tol=1e-8,
        )
        assert (np.count_nonzero(maps) == 0) == expect_zero


@pytest.mark.parametrize("p", [1.0, 0.8])
@pytest.mark.parametrize("scale", [2.0**-8, 255.0])
def test_auto_lmbda_is_scale_free(fruit_crops, scale, p):
    """lmbda='auto' on a * X: same filters, maps times a, lmbda_ times a^(p-2)."""
    reference = _coder(p=p, solver="fista").fit(fruit_crops)
    scaled = _coder(p=p, solver="fista").fit(fruit_crops * scale)
    np.testing.assert_allclose(scaled.lmbda_, reference.lmbda_ * scale ** (p - 2), rtol=1e-5)
    np.testing.assert_allclose(scaled.filters_, reference.filters_, atol=1e-6)
    np.testing.assert_allclose(
        scaled.transform(fruit_crops * scale), reference.transform(fruit_crops) * scale,
        atol=1e-6 * scale,
    )


def test_auto_lmbda_learns_live_sparse_maps_at_every_input_scale(fruit_crops):
    raw = load_zeiler2010("fruit", as_gray=True)[:4, 20:60, 20:60]
    for X in (fruit_crops, images_to_rows(raw), 255 * images_to_rows(raw)):
        coder = _coder().fit(X)
        density = np.mean(coder.transform(X) != 0)
        assert 0.002 < density < 0.3, density


def test_numeric_lmbda_is_absolute(fruit_crops):
    coder = _coder(lmbda=3.0, n_epochs=2).fit(fruit_crops)
    assert coder.lmbda_ == 3.0 and coder.lmbda == 3.0


def test_lmbda_auto_is_searchable_with_numbers(fruit_crops):
    search = GridSearchCV(_coder(n_epochs=3), {"lmbda": ["auto", 2.0]}, cv=2)
    search.fit(fruit_crops)
    assert set(search.cv_results_["param_lmbda"]) == {"auto", 2.0}


# ------------------------------------------------------------ dead layers
def test_dead_layer_warns_naming_lmbda(fruit_crops):
    with pytest.warns(DeadLayerWarning, match="increase lmbda"):
        _coder(lmbda=1e-3).fit(fruit_crops)


def test_network_dead_layer_warning_names_the_layer(fruit_crops):
    net = DeconvNetworkTransformer(
        n_filters=(4, 6), filter_shape=5, image_shape=(40, 40), lmbda=("auto", 1e-4),
        n_epochs=5, random_state=0,
    )
    with pytest.warns(DeadLayerWarning, match="layer 2") as record:
        net.fit(fruit_crops)
    assert not any("layer 1" in str(w.message) for w in record)


def test_default_fit_does_not_warn(fruit_crops):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeadLayerWarning)
        _coder().fit(fruit_crops)


# ------------------------------------------------------ edge-like filters
@functools.cache
def _benchmark_defaults():
    """benchmarks/defaults.py, whose edge-like measure the user guide's table uses."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "defaults.py"
    spec = importlib.util.spec_from_file_location("benchmark_defaults", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _edge_fractions(coder):
    """Per filter: its spectral energy below half the Nyquist (edge-like: > 0.5)."""
    return _benchmark_defaults().edge_fraction(coder.filters_)


def test_default_coder_learns_edge_like_filters_on_the_fruit_images():
    """Default normaliser and coder: all 9 filters edge-like (without the
    normaliser's low-pass, 8 of 9 by this measure)."""
    images = load_zeiler2010("fruit", as_gray=True).astype(np.float32)
    X = LocalContrastNormalizer(image_shape=(100, 100)).fit_transform(images_to_rows(images))
    coder = ConvSparseCoder(9, 7, image_shape=(100, 100), n_jobs=2, random_state=0).fit(X)
    fractions = _edge_fractions(coder)
    assert (fractions > 0.5).all(), fractions


@pytest.mark.slow
@pytest.mark.parametrize("random_state", [0, 1])
@pytest.mark.parametrize("half_size", [True, False])
def test_default_coder_learns_edge_like_filters_on_a_photograph(half_size, random_state):
    """scikit-image's camera, 16 crops: all 12 filters edge-like (without the
    normaliser's low-pass, 4 to 6 of 12)."""
    pytest.importorskip("skimage")
    defaults = _benchmark_defaults()
    X = defaults._camera_crops(defaults._lcn(4.0, 25), half_size=half_size)
    side = 64 if half_size else 128
    coder = ConvSparseCoder(
        12, 7, image_shape=(side, side), n_jobs=2, random_state=random_state
    ).fit(X)
    fractions = _edge_fractions(coder)
    assert (fractions > 0.5).all(), fractions


# ----------------------------------------------------------- connectivity
@pytest.mark.parametrize("n_filters", [(3,), (3, 5), (3, 5, 7), (3, 5, 7, 4)])
def test_default_connectivity_fits_any_depth(fruit_crops, n_filters):
    net = DeconvNetworkTransformer(
        n_filters=n_filters, filter_shape=3, image_shape=(40, 40), n_epochs=2,
        max_iter=5, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DeadLayerWarning)
        net.fit(fruit_crops[:2])
    presets = [layer.connectivity for _, layer in net.pipeline_.steps]
    assert presets[0] == "full"
    assert all(preset == "random_pairs" for preset in presets[1:])


def test_default_connectivity_is_the_papers_for_its_network():
    from skdeconv._connectivity import layer_connectivity

    presets = [
        layer_connectivity("auto", number, k, c)
        for number, (k, c) in enumerate(((9, 1), (45, 9), (150, 45)), start=1)
    ]
    assert presets == ["full", "singles_and_pairs", "random_pairs"]


def test_infeasible_layer_is_rejected_before_any_layer_trains(fruit_crops, monkeypatch):
    calls = []
    monkeypatch.setattr(ConvSparseCoder, "fit", lambda self, X, y=None: calls.append(1))
    net = DeconvNetworkTransformer(
        n_filters=(9, 40), connectivity=("full", "singles_and_pairs"), image_shape=(40, 40)
    )
    with pytest.raises(ValueError, match=r"Layer 2 .*n_filters = .* 45, got n_filters=40"):
        net.fit(fruit_crops)
    assert not calls


# --------------------------------------------------------------- warnings
def _fit_without_converging(X):
    return _coder(lmbda=20.0, max_iter=1, tol=1e-12, fit_algorithm="alternating",
                  n_epochs=2, solver="fista").fit(X)


def test_one_convergence_warning_per_call_attributed_to_the_caller(fruit_crops):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit_without_converging(fruit_crops)
    convergence = [w for w in caught if w.category is ConvergenceWarning]
    assert len(convergence) == 1
    assert convergence[0].filename == __file__


def test_warning_without_a_user_frame_names_and_points_at_the_public_method(fruit_crops):
    """In a joblib worker process of GridSearchCV no frame is the user's (the
    stack starts in multiprocessing): the warning names the estimator's
    method and points at its definition, not at the standard library's
    files.  A thread started by the standard library has such a stack."""
    coder = _coder(max_iter=1, tol=1e-12, solver="fista", n_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coder.fit(fruit_crops)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        worker = threading.Thread(target=coder.transform, args=(fruit_crops,))
        worker.start()
        worker.join()
    [warning] = [w for w in caught if w.category is ConvergenceWarning]
    assert warning.filename == inspect.getsourcefile(ConvSparseCoder)
    assert str(warning.message).startswith("ConvSparseCoder.transform: Map inference")


def test_one_warning_through_a_pipeline_and_a_network(fruit_crops):
    net = DeconvNetworkTransformer(
        n_filters=(3, 4), filter_shape=3, image_shape=(40, 40), max_iter=1, tol=1e-12,
        fit_algorithm="alternating", n_epochs=2, lmbda=20.0, solver="fista", random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Pipeline([("net", net)]).fit(fruit_crops)
    convergence = [w for w in caught if w.category is ConvergenceWarning]
    assert len(convergence) == 1
    assert convergence[0].filename == __file__
    assert "over" in str(convergence[0].message)  # summed over the inferences
