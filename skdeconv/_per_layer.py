"""Per-layer parameters of the networks: one value for every layer, or one each.

Shared by :class:`~skdeconv.DeconvNetworkTransformer` and
:class:`~skdeconv.AdaptiveDeconvNetwork`.
"""

from sklearn.utils._param_validation import validate_parameter_constraints


def split_per_layer(estimator, names, constraints):
    """One dict per layer of ``n_filters`` and the per-layer parameters ``names``.

    A tuple or list holds one entry per layer (as many as ``n_filters``
    has); any other value is used for every layer.  Each layer's entries are
    validated against ``constraints``; errors name the layer.
    """
    n_filters = estimator.n_filters
    if not isinstance(n_filters, (tuple, list)):
        n_filters = (n_filters,)
    if not n_filters:
        raise ValueError("n_filters must give at least one layer, got ().")
    n_layers = len(n_filters)
    columns = {"n_filters": n_filters}
    for name in names:
        value = getattr(estimator, name)
        if not isinstance(value, (tuple, list)):
            value = (value,) * n_layers
        elif len(value) != n_layers:
            raise ValueError(
                f"{name}={value!r} has {len(value)} entries but n_filters="
                f"{estimator.n_filters!r} defines {n_layers} layers; give one "
                "entry per layer, or a value that is not a tuple or list "
                "to use it for every layer."
            )
        columns[name] = value
    layers = [dict(zip(columns, entries)) for entries in zip(*columns.values())]
    for number, params in enumerate(layers, start=1):
        validate_parameter_constraints(
            constraints, params, f"{type(estimator).__name__} (layer {number})"
        )
    return layers


def per_layer_constraint(constraints, name):
    """``constraints[name]`` for one entry, or a tuple/list of entries (one per layer)."""
    return [*constraints[name], tuple, list]
