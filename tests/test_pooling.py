"""Tests of skdeconv.pooling on synthetic maps (no coder or network needed)."""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted, validate_data

from skdeconv.datasets import load_image_folder
from skdeconv.pooling import (
    BagOfWordsPyramid,
    DenseMapDescriptors,
    PyramidPooledMaps,
    SpatialPyramidPooling,
    intersection_kernel,
    spatial_pyramid_pool,
)


# ------------------------------------------------------------------ references
def _bins(n, level):
    return np.array_split(np.arange(n), level)


def reference_pool(maps, levels, pooling, absolute):
    """Spatial pyramid pooling by plain loops, [level][map][bins] order."""
    rows = []
    for sample in maps:
        row = []
        for level in levels:
            for m in sample:
                for cell in itertools.product(*[_bins(n, level) for n in m.shape]):
                    values = m[np.ix_(*cell)]
                    values = np.abs(values) if absolute else values
                    if values.size == 0:
                        row.append(0.0)
                    else:
                        row.append(values.max() if pooling == "max" else values.mean())
        rows.append(row)
    return np.array(rows)


# ------------------------------------------------------------------ stand-ins
class PaddedMaps(TransformerMixin, BaseEstimator):
    """Stand-in coder: each row is one 1-D map, zero-padded by ``pad`` at both ends.

    Its map geometry depends on a parameter, as ConvSparseCoder's on filter_shape.
    """

    def __init__(self, pad=0, scale=1.0):
        self.pad = pad
        self.scale = scale

    def fit(self, X, y=None):
        X = validate_data(self, X)
        self.feature_map_shape_ = (1, X.shape[1] + 2 * self.pad)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.scale * np.pad(X, ((0, 0), (self.pad, self.pad)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class _Layer:
    def __init__(self, feature_map_shape):
        self.feature_map_shape_ = feature_map_shape


class FakeNetwork(TransformerMixin, BaseEstimator):
    """Stand-in DeconvNetworkTransformer for DenseMapDescriptors.

    Map ``k`` of layer ``l`` is ``(k + 1) * image - l`` placed in a zero map larger
    by ``growth[l - 1]`` per axis, at offset ``growth // 2`` (the centre crop).
    """

    def __init__(self, image_shape=None, n_maps=(2, 3), growth=(2, 5)):
        self.image_shape = image_shape
        self.n_maps = n_maps
        self.growth = growth

    def fit(self, X, y=None):
        self.pipeline_ = [
            _Layer((k, *(s + g for s in self.image_shape)))
            for k, g in zip(self.n_maps, self.growth)
        ]
        return self

    def transform(self, X, layers=(-1,)):
        images = np.asarray(X).reshape(len(X), *self.image_shape)
        out = []
        for layer in layers:
            k, *shape = self.pipeline_[layer - 1].feature_map_shape_
            off = self.growth[layer - 1] // 2
            maps = np.zeros((len(X), k, *shape))
            for m in range(k):
                maps[:, m, off:off + self.image_shape[0], off:off + self.image_shape[1]] = (
                    (m + 1) * images - layer
                )
            out.append(maps.reshape(len(X), -1))
        return out


class FakeDescriptors(TransformerMixin, BaseEstimator):
    """Stand-in DenseMapDescriptors: rows already are descriptors on a patch grid."""

    def __init__(self, image_shape=(20, 12), starts=((0, 8), (0, 4, 8)), patch_size=4):
        self.image_shape = image_shape
        self.starts = starts
        self.patch_size = patch_size

    def fit(self, X, y=None):
        rows, cols = np.meshgrid(*self.starts, indexing="ij")
        self.patch_centers_ = np.column_stack([rows.ravel(), cols.ravel()]) + (
            self.patch_size - 1) / 2
        self.image_shape_ = self.image_shape
        n_patches = len(self.patch_centers_)
        self.descriptor_shape_ = (n_patches, X.shape[1] // n_patches)
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float)


# ------------------------------------------------------------------ spatial_pyramid_pool
@pytest.mark.parametrize(
    "map_shape, levels",
    [((7,), (1, 2, 4)), ((3,), (1, 2, 4)), ((5, 6), (1, 2, 4)), ((8, 8), (1, 3)),
     ((2, 9), (2, 5)), ((3, 4, 5), (1, 2))],
)
@pytest.mark.parametrize("pooling", ["max", "mean"])
@pytest.mark.parametrize("absolute", [True, False])
def test_spatial_pyramid_pool_matches_loops(map_shape, levels, pooling, absolute):
    maps = np.random.RandomState(0).randn(3, 2, *map_shape)
    got = spatial_pyramid_pool(maps, levels, pooling=pooling, absolute=absolute)
    n_out = 2 * sum(level ** len(map_shape) for level in levels)
    assert got.shape == (3, n_out)
    assert_allclose(got, reference_pool(maps, levels, pooling, absolute), rtol=1e-12)


def test_spatial_pyramid_pool_preserves_float32():
    maps = np.random.RandomState(0).randn(2, 3, 5, 5).astype(np.float32)
    got = spatial_pyramid_pool(maps, (1, 2), pooling="mean")
    assert got.dtype == np.float32
    assert_allclose(got, reference_pool(maps.astype(float), (1, 2), "mean", True), rtol=1e-5)


@pytest.mark.parametrize("levels", [(), (2, 1), (1, 1), (0, 1), (1.5,), (True,)])
def test_spatial_pyramid_pool_rejects_bad_levels(levels):
    with pytest.raises(ValueError, match="levels must be"):
        spatial_pyramid_pool(np.ones((1, 1, 4)), levels)


def test_spatial_pyramid_pool_needs_a_spatial_axis():
    with pytest.raises(ValueError, match=r"at least one spatial axis.*\(2, 3\)"):
        spatial_pyramid_pool(np.ones((2, 3)))


# ------------------------------------------------------------------ SpatialPyramidPooling
@parametrize_with_checks(
    [
        SpatialPyramidPooling(),
        SpatialPyramidPooling(levels=(1, 3), pooling="mean", absolute=False),
        PyramidPooledMaps(PaddedMaps(pad=2)),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("map_shape", [(6,), (4, 5)])
def test_spatial_pyramid_pooling_transform_matches_loops(map_shape):
    rng = np.random.RandomState(1)
    n_maps = 3
    X = rng.randn(4, n_maps * int(np.prod(map_shape)))
    pool = SpatialPyramidPooling(map_shape, levels=(1, 2, 4), pooling="mean")
    got = pool.fit_transform(X)
    assert (pool.n_maps_, pool.map_shape_) == (n_maps, map_shape)
    expected = reference_pool(X.reshape(4, n_maps, *map_shape), (1, 2, 4), "mean", True)
    assert_allclose(got, expected, rtol=1e-12)


def test_spatial_pyramid_pooling_none_is_one_1d_map_per_row():
    X = np.random.RandomState(2).randn(3, 10)
    got = SpatialPyramidPooling().fit_transform(X)
    assert_allclose(got, reference_pool(X[:, None, :], (1, 2, 4), "max", True))


def test_spatial_pyramid_pooling_feature_names_follow_output_order():
    X = np.ones((1, 2 * 2 * 3))
    names = SpatialPyramidPooling((2, 3), levels=(1, 2)).fit(X).get_feature_names_out()
    assert len(names) == 2 * (1 + 4)
    assert list(names[:3]) == [
        "spatialpyramidpooling_level1_map0_bin0_0",
        "spatialpyramidpooling_level1_map1_bin0_0",
        "spatialpyramidpooling_level2_map0_bin0_0",
    ]
    assert names[-1] == "spatialpyramidpooling_level2_map1_bin1_1"


def test_spatial_pyramid_pooling_rejects_bad_map_shape():
    with pytest.raises(ValueError, match=r"X has 10 features.*9 values.*\(3, 3\)"):
        SpatialPyramidPooling((3, 3)).fit(np.ones((2, 10)))
    with pytest.raises(ValueError, match="map_shape must be"):
        SpatialPyramidPooling((3, 0)).fit(np.ones((2, 10)))


# ------------------------------------------------------------------ PyramidPooledMaps
def test_pooled_maps_reads_geometry_and_pools_the_estimator_output():
    X = np.random.RandomState(3).randn(5, 7)
    pooled = PyramidPooledMaps(PaddedMaps(pad=3, scale=-2.0), levels=(1, 2, 4)).fit(X)
    assert (pooled.n_maps_, pooled.map_shape_) == (1, (13,))
    maps = (-2.0 * np.pad(X, ((0, 0), (3, 3))))[:, None, :]
    expected = reference_pool(maps, (1, 2, 4), "max", True)
    assert_allclose(pooled.transform(X), expected)
    assert_allclose(PyramidPooledMaps(PaddedMaps(pad=3, scale=-2.0)).fit_transform(X), expected)


def test_pooled_maps_grid_search_over_geometry_changing_parameters():
    rng = np.random.RandomState(4)
    X = rng.randn(40, 6)
    y = (X[:, 0] > 0).astype(int)
    model = Pipeline([("pooled", PyramidPooledMaps(PaddedMaps(), pooling="mean",
                                                   absolute=False)),
                      ("clf", LogisticRegression())])
    grid = {"pooled__estimator__pad": [0, 2, 5], "pooled__estimator__scale": [1.0, 3.0]}
    search = GridSearchCV(model, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    best = search.best_estimator_["pooled"]
    assert best.map_shape_ == (6 + 2 * best.estimator_.pad,)
    assert best.estimator_ is not model["pooled"].estimator


def test_pooled_maps_accepts_a_frozen_fitted_estimator():
    X = np.random.RandomState(5).randn(4, 5)
    inner = PaddedMaps(pad=1).fit(X)
    pooled = PyramidPooledMaps(FrozenEstimator(inner), levels=(1, 2)).fit(X)
    assert pooled.map_shape_ == (7,)
    assert_allclose(pooled.fit_transform(X), pooled.transform(X))


def test_pooled_maps_needs_feature_map_shape():
    class NoShape(PaddedMaps):
        def fit(self, X, y=None):
            super().fit(X)
            del self.feature_map_shape_
            return self

    with pytest.raises(TypeError, match="NoShape must expose feature_map_shape_"):
        PyramidPooledMaps(NoShape()).fit(np.ones((3, 4)))


# ------------------------------------------------------------------ intersection kernel
def test_intersection_kernel_matches_brute_force():
    rng = np.random.RandomState(6)
    A, B = rng.rand(5, 7), rng.rand(3, 7)
    expected = np.array([[sum(min(a, b) for a, b in zip(x, z)) for z in B] for x in A])
    assert_allclose(intersection_kernel(A, B), expected, rtol=1e-12)
    assert_allclose(intersection_kernel(A), intersection_kernel(A, A))
    assert intersection_kernel(A.astype(np.float32), B.astype(np.float32)).dtype == np.float32


def test_intersection_kernel_chunks(monkeypatch):
    from skdeconv.pooling import _kernels

    rng = np.random.RandomState(7)
    A, B = rng.rand(9, 4), rng.rand(6, 4)
    expected = intersection_kernel(A, B)
    monkeypatch.setattr(_kernels, "_KERNEL_CHUNK_ELEMENTS", 30)  # one row per chunk
    assert_array_equal(intersection_kernel(A, B), expected)


def test_intersection_kernel_rejects_mismatched_features():
    with pytest.raises(ValueError, match="Incompatible dimension"):
        intersection_kernel(np.ones((2, 3)), np.ones((2, 4)))


# ------------------------------------------------------------------ DenseMapDescriptors
def reference_descriptors(images, n_maps, patch_size, step, grid):
    """Per image, per patch: |(k + 1) * image - layer| averaged on grid cells, by loops."""
    n, H, W = images.shape
    out = []
    for image in images:
        patches = []
        for r0 in range(0, H - patch_size + 1, step):
            for c0 in range(0, W - patch_size + 1, step):
                patch = image[r0:r0 + patch_size, c0:c0 + patch_size]
                desc = []
                for layer, k in enumerate(n_maps, start=1):
                    for m in range(k):
                        values = np.abs((m + 1) * patch - layer)
                        for rows in _bins(patch_size, grid):
                            for cols in _bins(patch_size, grid):
                                desc.append(values[np.ix_(rows, cols)].mean())
                patches.append(desc)
        out.append(patches)
    return np.array(out)


@pytest.mark.parametrize(
    "image_shape, patch_size, step, grid",
    [((40, 33), 16, 8, 4), ((21, 18), 10, 3, 3), ((16, 16), 16, 8, 4)],
)
def test_dense_map_descriptors_match_loops(image_shape, patch_size, step, grid):
    H, W = image_shape
    images = np.random.RandomState(8).randn(3, H, W)
    X = images.reshape(3, -1)
    desc = DenseMapDescriptors(FakeNetwork(image_shape), patch_size=patch_size,
                               step=step, grid=grid, batch_size=2).fit(X)
    n_patches = ((H - patch_size) // step + 1) * ((W - patch_size) // step + 1)
    assert desc.descriptor_shape_ == (n_patches, (2 + 3) * grid**2)
    assert desc.patch_centers_.shape == (n_patches, 2)
    assert_allclose(desc.patch_centers_[0], [(patch_size - 1) / 2] * 2)
    got = desc.transform(X)
    assert got.shape == (3, n_patches * (2 + 3) * grid**2)
    expected = reference_descriptors(images, (2, 3), patch_size, step, grid)
    assert_allclose(got.reshape(3, *desc.descriptor_shape_), expected, rtol=1e-10)


def test_dense_map_descriptors_default_geometry_on_150_pixel_images():
    desc = DenseMapDescriptors(FakeNetwork((150, 150), n_maps=(9, 45))).fit(np.zeros((1, 150**2)))
    assert desc.descriptor_shape_ == (17 * 17, (9 + 45) * 16)
    assert_allclose(desc.patch_centers_[[0, 1, 17]], [[7.5, 7.5], [7.5, 15.5], [15.5, 7.5]])


def test_dense_map_descriptors_layers_from_the_top():
    images = np.random.RandomState(9).randn(2, 18, 18)
    X = images.reshape(2, -1)
    top = DenseMapDescriptors(FakeNetwork((18, 18)), layers=(-1,)).fit(X)
    assert top.layers_ == (2,)
    both = DenseMapDescriptors(FakeNetwork((18, 18))).fit(X)
    per_patch = both.transform(X).reshape(2, *both.descriptor_shape_)
    assert_allclose(top.transform(X).reshape(2, *top.descriptor_shape_), per_patch[..., 2 * 16:])


@pytest.mark.parametrize(
    "network, params, message",
    [
        (FakeNetwork((18, 18)), {"layers": (3,)}, r"layers must be a layer number in 1\.\.2"),
        (FakeNetwork((12, 18)), {}, r"patch_size=16 is larger than the images of shape \(12,"),
        (FakeNetwork((18, 18)), {"grid": 17}, "grid=17 cells per side do not fit"),
        (FakeNetwork((324,)), {}, r"set image_shape=\(H, W\) on the network"),
    ],
)
def test_dense_map_descriptors_errors(network, params, message):
    with pytest.raises(ValueError, match=message):
        DenseMapDescriptors(network, **params).fit(np.zeros((1, 324)))


# ------------------------------------------------------------------ BagOfWordsPyramid
def reference_histograms(words, centers, image_shape, n_words, levels):
    weights = [1 / 2 ** (len(levels) - 1)] + [
        1 / 2 ** (len(levels) - i) for i in range(1, len(levels))]
    out = []
    for image_words in words:
        row = []
        for level, weight in zip(levels, weights):
            hist = np.zeros((n_words, level, level))
            for word, (r, c) in zip(image_words, centers):
                i = next(b for b, rows in enumerate(_bins(image_shape[0], level))
                         if int(r) in rows)
                j = next(b for b, cols in enumerate(_bins(image_shape[1], level))
                         if int(c) in cols)
                hist[word, i, j] += 1
            row.extend(weight * hist.ravel() / len(image_words))
        out.append(row)
    return np.array(out)


def test_bag_of_words_pyramid_matches_loops():
    rng = np.random.RandomState(10)
    n_patches, n_dims = 6, 3
    X = rng.randn(7, n_patches * n_dims)
    bow = BagOfWordsPyramid(FakeDescriptors(), n_words=4, levels=(1, 2, 4),
                            batch_size=3, random_state=0).fit(X)
    got = bow.transform(X)
    assert got.shape == (7, 4 * (1 + 4 + 16))
    assert_allclose(got.sum(axis=1), 1.0)
    words = bow.kmeans_.predict(X.reshape(-1, n_dims)).reshape(7, n_patches)
    expected = reference_histograms(words, bow.descriptors_.patch_centers_, (20, 12), 4,
                                    (1, 2, 4))
    assert_allclose(got, expected, rtol=1e-12)
    assert bow.level_weights_ == [0.25, 0.25, 0.5]
    names = bow.get_feature_names_out()
    assert (names[0], names[-1]) == ("bagofwordspyramid_level1_word0_bin0_0",
                                     "bagofwordspyramid_level4_word3_bin3_3")


def test_bag_of_words_pyramid_is_reproducible_and_bounded_by_max_descriptors():
    X = np.random.RandomState(11).randn(10, 6 * 2)
    kwargs = dict(n_words=3, max_descriptors=13, random_state=0)
    a = BagOfWordsPyramid(FakeDescriptors(), **kwargs).fit(X)
    b = BagOfWordsPyramid(FakeDescriptors(), **kwargs).fit(X)
    assert_array_equal(a.kmeans_.cluster_centers_, b.kmeans_.cluster_centers_)
    with pytest.raises(ValueError, match="n_words=20 is larger than the 13 descriptors"):
        BagOfWordsPyramid(FakeDescriptors(), n_words=20, max_descriptors=13).fit(X)


# ------------------------------------------------------------------ image folders, end to end
def _write_tree(root, n_per_class=4, size=(30, 26)):
    """Classes 'bottom' (bright lower half) and 'right' (bright right half)."""
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.RandomState(12)
    for name in ["right", "bottom"]:
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n_per_class):
            image = rng.randint(0, 40, size=size).astype(np.uint8)
            if name == "bottom":
                image[size[0] // 2:] += 200
            else:
                image[:, size[1] // 2:] += 200
            Image.fromarray(image).save(folder / f"img{i}.png")
        (folder / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    (root / "empty").mkdir()


def test_load_image_folder(tmp_path):
    _write_tree(tmp_path)
    images, y, names = load_image_folder(tmp_path, image_size=(20, 24))
    assert names == ["bottom", "right"]
    assert images.shape == (8, 20, 24) and images.dtype == np.float64
    assert_array_equal(y, [0] * 4 + [1] * 4)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert images[0, -1].mean() > 0.8 > 0.2 > images[0, 0].mean()  # bright bottom rows
    rgb, _, _ = load_image_folder(tmp_path, image_size=(5, 6), as_gray=False)
    assert rgb.shape == (8, 5, 6, 3)


def test_load_image_folder_keeps_its_old_place():
    import skdeconv.pooling

    assert skdeconv.pooling.load_image_folder is load_image_folder
    assert "load_image_folder" in skdeconv.pooling.__all__


def test_load_image_folder_errors(tmp_path):
    pytest.importorskip("PIL")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no image files"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="image_size must be"):
        load_image_folder(tmp_path, image_size=(0, 3))


def test_caltech_style_pipeline_end_to_end(tmp_path):
    _write_tree(tmp_path, n_per_class=6)
    images, y, _ = load_image_folder(tmp_path, image_size=(24, 24))
    X = images.reshape(len(images), -1)
    descriptors = DenseMapDescriptors(FakeNetwork((24, 24), n_maps=(1, 1)),
                                      patch_size=8, step=4, grid=2)
    model = make_pipeline(
        BagOfWordsPyramid(descriptors, n_words=4, levels=(1, 2), random_state=0),
        SVC(kernel=intersection_kernel),
    )
    train = np.arange(len(y)) % 3 != 0
    model.fit(X[train], y[train])
    assert model.score(X[~train], y[~train]) == 1.0
