"""Connectivity presets and validation (skdeconv._connectivity)."""

from itertools import combinations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skdeconv import make_connectivity
from skdeconv._connectivity import CONNECTIVITY_CONSTRAINT, _make_connectivity


@pytest.mark.parametrize("connectivity", [None, "full"])
def test_full(connectivity):
    g = make_connectivity(connectivity, n_filters=4, n_channels=3)
    assert g.dtype == bool
    np.testing.assert_array_equal(g, np.ones((4, 3), dtype=bool))


@pytest.mark.parametrize("n_channels", [1, 2, 3, 9])
def test_singles_and_pairs_exact(n_channels):
    n_filters = n_channels + n_channels * (n_channels - 1) // 2
    g = make_connectivity("singles_and_pairs", n_filters, n_channels)
    expected = [{c} for c in range(n_channels)]
    expected += [set(pair) for pair in combinations(range(n_channels), 2)]
    assert [set(np.flatnonzero(row)) for row in g] == expected
    if n_channels == 9:
        assert g.shape == (45, 9)


def test_singles_and_pairs_count_mismatch_names_both_numbers():
    with pytest.raises(ValueError, match=r"n_channels=4.*10.*n_filters=7"):
        make_connectivity("singles_and_pairs", n_filters=7, n_channels=4)


@pytest.mark.parametrize("preset, size", [("random_pairs", 2), ("random_3", 3), ("random_1", 1)])
def test_random_presets(preset, size):
    g = make_connectivity(preset, n_filters=50, n_channels=6, random_state=0)
    assert g.shape == (50, 6) and g.dtype == bool
    np.testing.assert_array_equal(g.sum(axis=1), np.full(50, size))
    # reproducible from the seed, different for another seed
    np.testing.assert_array_equal(
        g, make_connectivity(preset, n_filters=50, n_channels=6, random_state=0)
    )
    other = make_connectivity(preset, n_filters=50, n_channels=6, random_state=1)
    assert not np.array_equal(g, other)
    # every channel gets used by some map (50 draws over 6 channels)
    assert g.any(axis=0).all()


def test_random_preset_rng_instance_advances():
    rng = np.random.RandomState(0)
    first = make_connectivity("random_pairs", 20, 5, random_state=rng)
    second = make_connectivity("random_pairs", 20, 5, random_state=rng)
    assert not np.array_equal(first, second)


def test_random_m_larger_than_channels():
    with pytest.raises(ValueError, match=r"random_4.*n_channels=3"):
        make_connectivity("random_4", n_filters=2, n_channels=3)


@pytest.mark.parametrize("bad", ["random_0", "random_", "random_x", "pairs", "fulls"])
def test_bad_string(bad):
    with pytest.raises(ValueError, match="connectivity"):
        _make_connectivity(bad, 3, 3)


def test_array_used_as_given():
    g = np.array([[1, 0, 1], [0, 1, 0]])
    out = make_connectivity(g, n_filters=2, n_channels=3)
    assert out.dtype == bool
    np.testing.assert_array_equal(out, g.astype(bool))
    out_list = make_connectivity(g.tolist(), n_filters=2, n_channels=3)
    np.testing.assert_array_equal(out_list, out)


def test_array_wrong_shape_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        make_connectivity(np.ones((3, 2)), n_filters=2, n_channels=3)


@pytest.mark.parametrize("bad", [[[1, 2], [0, 1]], [[0.5, 1], [1, 0]], [["a", "b"], ["c", "d"]]])
def test_array_not_binary(bad):
    with pytest.raises(ValueError, match="binary"):
        make_connectivity(np.array(bad), n_filters=2, n_channels=2)


def test_array_row_without_connection():
    with pytest.raises(ValueError, match=r"\[1\]"):
        make_connectivity(np.array([[1, 0], [0, 0]]), n_filters=2, n_channels=2)


def test_public_function_validates_counts():
    with pytest.raises(InvalidParameterError, match="n_filters"):
        make_connectivity("full", n_filters=0, n_channels=2)
    with pytest.raises(InvalidParameterError, match="n_channels"):
        make_connectivity("full", n_filters=2, n_channels=0)


@pytest.mark.parametrize(
    "value, ok",
    [
        (None, True),
        ("full", True),
        ("singles_and_pairs", True),
        ("random_pairs", True),
        ("random_7", True),
        (np.ones((2, 2)), True),
        ("random_", False),
        ("bogus", False),
    ],
)
def test_constraint_accepts_presets(value, ok):
    from sklearn.utils._param_validation import make_constraint

    satisfied = any(make_constraint(c).is_satisfied_by(value) for c in CONNECTIVITY_CONSTRAINT)
    assert satisfied is ok
