"""Held-out pixel scoring: a lambda criterion without labels that is not monotone."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skdeconv import ConvSparseCoder, heldout_pixel_score
from skdeconv._encode import _encode
from skdeconv._filters import random_filters
from skdeconv.datasets import load_zeiler2010
from skdeconv.preprocessing import local_contrast_normalize


def _fruit_rows(size=32):
    images = local_contrast_normalize(load_zeiler2010("fruit", as_gray=True))
    return images[:, :size, :size].reshape(10, -1)


def test_masked_inference_ignores_hidden_pixels():
    """Maps inferred with a mask do not depend on the hidden pixels' values."""
    rng = np.random.RandomState(0)
    g = np.ones((3, 1), bool)
    filters = random_filters(3, 1, (3, 3), g, rng, np.float64)
    Y = rng.standard_normal((2, 1, 10, 10))
    weights = (rng.random_sample(Y.shape) > 0.3).astype(float)
    changed = np.where(weights == 1, Y, rng.standard_normal(Y.shape) * 100)
    maps = [
        _encode(target, filters, g, lmbda=5.0, p=1.0, solver="fista", max_iter=500, tol=1e-10,
                n_jobs=1, mask=weights)[0]
        for target in (Y, changed)
    ]
    np.testing.assert_array_equal(maps[0], maps[1])
    unmasked = _encode(changed, filters, g, lmbda=5.0, p=1.0, solver="fista", max_iter=500,
                       tol=1e-10, n_jobs=1)[0]
    assert not np.allclose(unmasked, maps[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_heldout_score_picks_an_interior_lambda_where_score_picks_the_smallest():
    X = _fruit_rows(24)
    grid = {"lmbda": [0.3, 3.0, 100.0]}
    coder = ConvSparseCoder(9, 7, image_shape=(24, 24), n_epochs=30, random_state=0)
    # One search, both scores on the same fits (refit=False: no extra fit).
    scoring = {"cost": lambda est, X, y=None: est.score(X), "heldout": heldout_pixel_score}
    search = GridSearchCV(coder, grid, cv=2, scoring=scoring, refit=False).fit(X)
    results = search.cv_results_
    assert grid["lmbda"][np.argmax(results["mean_test_cost"])] == 0.3
    assert grid["lmbda"][np.argmax(results["mean_test_heldout"])] == 3.0


def test_heldout_score_errors():
    X = _fruit_rows(16)
    coder = ConvSparseCoder(2, 3, image_shape=(16, 16), n_epochs=1, random_state=0)
    with pytest.raises(ValueError, match="fraction"):
        heldout_pixel_score(coder.fit(X), X, fraction=1.5)
    with pytest.raises(ValueError, match="features"):
        heldout_pixel_score(coder, X[:, :-1])
