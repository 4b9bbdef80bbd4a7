"""End-to-end tests of skdeconv.pooling with the real estimators."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdeconv import ConvSparseCoder, DeconvNetworkTransformer
from skdeconv.datasets import load_image_folder
from skdeconv.pooling import (
    BagOfWordsPyramid,
    DenseMapDescriptors,
    PyramidPooledMaps,
    SpatialPyramidPooling,
    intersection_kernel,
)

EXAMPLE = Path(__file__).parents[1] / "examples" / "caltech101_protocol.py"
# Few iterations on purpose: these tests check plumbing, not convergence.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _coder(filter_shape=3):
    return ConvSparseCoder(n_filters=3, filter_shape=filter_shape, image_shape=(8, 8),
                           max_iter=20, tol=1e-2, n_epochs=1, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:80] / 16, y[:80]


@parametrize_with_checks([PyramidPooledMaps(ConvSparseCoder(n_filters=2, filter_shape=3,
                                                            tol=1e-4, n_epochs=1,
                                                            random_state=0))])
def test_pooled_coder_sklearn_compatible(estimator, check):
    check(estimator)


def test_pooled_coder_equals_explicit_pooling_of_the_coder_maps(digits):
    X, _ = digits
    pooled = PyramidPooledMaps(_coder(filter_shape=(3, 5)), levels=(1, 2, 3)).fit(X)
    coder = _coder(filter_shape=(3, 5)).fit(X)
    assert pooled.map_shape_ == coder.feature_map_shape_[1:] == (10, 12)
    explicit = SpatialPyramidPooling(coder.feature_map_shape_[1:], levels=(1, 2, 3))
    expected = explicit.fit_transform(coder.transform(X))
    assert pooled.transform(X).shape == (80, 3 * (1 + 4 + 9))
    assert_allclose(pooled.transform(X), expected)


def test_grid_search_over_lmbda_and_filter_shape(digits):
    X, y = digits
    model = Pipeline([("pooled", PyramidPooledMaps(_coder(), levels=(1, 2))),
                      ("clf", LogisticRegression(max_iter=500))])
    grid = {"pooled__estimator__lmbda": [1.0, 10.0],
            "pooled__estimator__filter_shape": [3, 5]}
    search = GridSearchCV(model, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_["pooled"]
    filter_shape = search.best_params_["pooled__estimator__filter_shape"]
    assert best.map_shape_ == (8 + filter_shape - 1,) * 2
    assert best.estimator_.lmbda == search.best_params_["pooled__estimator__lmbda"]
    assert search.best_score_ > 0.3  # 10 classes: well above chance


def _png_tree(root, n_per_class=5, size=(28, 28)):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.RandomState(0)
    for name in ["bottom", "right"]:
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            image = rng.randint(0, 40, size=size).astype(np.uint8)
            if name == "bottom":
                image[size[0] // 2:] += 200
            else:
                image[:, size[1] // 2:] += 200
            Image.fromarray(image).save(root / name / f"{i}.png")


def _network(image_shape):
    return DeconvNetworkTransformer(
        n_filters=(2, 3), filter_shape=3, connectivity="full", image_shape=image_shape,
        max_iter=10, n_epochs=1, random_state=0,
    )


def test_dense_descriptors_of_a_network_are_its_cropped_cell_means():
    X = np.random.RandomState(1).rand(3, 20 * 20)
    desc = DenseMapDescriptors(_network((20, 20)), patch_size=8, step=4, grid=2).fit(X)
    assert desc.descriptor_shape_ == (16, (2 + 3) * 4)
    layer1, layer2 = desc.network_.transform(X, layers=(1, 2))
    maps2 = np.abs(layer2.reshape(3, *desc.network_.pipeline_[1].feature_map_shape_))
    assert maps2.shape[2:] == (24, 24)  # 20 + 2 * (3 - 1): centre crop offset 2
    got = desc.transform(X).reshape(3, *desc.descriptor_shape_)
    # patch (row 1, col 2) starts at (4, 8); map 0 of layer 2, cell (1, 0): rows 8..12, cols 8..12
    expected = maps2[:, 0, 2 + 8:2 + 12, 2 + 8:2 + 12].mean(axis=(1, 2))
    assert_allclose(got[:, 1 * 4 + 2, 2 * 4 + 0 * 4 + 2], expected)


def test_caltech_pipeline_on_a_png_tree(tmp_path):
    _png_tree(tmp_path)
    images, y, _ = load_image_folder(tmp_path, image_size=(24, 24))
    X = images.reshape(len(images), -1)
    model = make_pipeline(
        BagOfWordsPyramid(DenseMapDescriptors(_network((24, 24)), patch_size=8, step=4,
                                              grid=2), n_words=4, levels=(1, 2),
                          random_state=0),
        SVC(kernel=intersection_kernel),
    )
    model.fit(X, y)
    assert model[0].transform(X).shape == (10, 4 * 5)
    assert model.score(X, y) >= 0.8


def test_caltech_example_script_runs(tmp_path, capsys):
    _png_tree(tmp_path, n_per_class=4)
    spec = importlib.util.spec_from_file_location("caltech101_protocol", EXAMPLE)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    accuracy = script.main(["--data-dir", str(tmp_path), "--n-train", "2", "--n-test", "2",
                            "--image-size", "24", "--n-network-images", "2",
                            "--n-epochs", "1", "--max-iter", "5", "--n-words", "4"])
    assert 0.0 <= accuracy <= 1.0
    assert "mean per-class recall" in capsys.readouterr().out
