"""SPORCO behind the benchmark: its import, threads, data layout and solvers.

Everything ``run.py`` needs from SPORCO goes through this module, so the
benchmark itself speaks skdeconv's conventions only:

- our images ``(n, H, W)`` and valid convolutions <-> SPORCO's zero-padded
  ``(H + h - 1, W + h - 1, n)`` arrays with a mask of the image
  (:func:`layout`, :func:`to_our_maps`);
- our ``lambda`` (weight of the data term) <-> SPORCO's ``lmbda = 1 / lambda``
  (weight of the sparsity term);
- its solvers built with the options the benchmark compares:
  :func:`map_solver`, :func:`dictionary_learner`, :func:`online_learner`.

``AVAILABLE`` is False when SPORCO (the ``bench`` extra) is missing; the
benchmark then prints skdeconv's columns only.
"""

import numpy as np

try:
    import sporco
    import sporco.fft
    from sporco.admm import cbpdn
    from sporco.dictlrn import cbpdndlmd
except ImportError:  # the `bench` extra is missing: skdeconv columns only
    sporco = None
else:
    if not hasattr(sporco.fft, "pyfftw_threads"):
        raise RuntimeError("sporco.fft.pyfftw_threads not found: cannot pin SPORCO to one thread")
    # One thread: SPORCO is 5-10x slower on a 2-core machine when its pyFFTW
    # plans use all cores.
    sporco.fft.pyfftw_threads = 1

AVAILABLE = sporco is not None
#: The map solvers compared in sections 1 and 1b.
MAP_METHODS = ("AddMaskSim(ConvBPDN)", "ConvBPDNMaskDcpl")


def version():
    """SPORCO's version and FFT backend, for the report's header."""
    if not AVAILABLE:
        return "missing"
    backend = " (pyFFTW)" if getattr(sporco.fft, "have_pyfftw", False) else " (numpy FFT)"
    return sporco.__version__ + backend


def layout(images, filter_size):
    """Zero-pad images (n, H, W) to (H + h - 1, W + h - 1, n) at the top left, and the mask."""
    n, height, width = images.shape
    padded = np.zeros((height + filter_size - 1, width + filter_size - 1, n))
    padded[:height, :width] = np.moveaxis(images, 0, -1)
    mask = np.zeros_like(padded)
    mask[:height, :width] = 1.0
    return padded, mask


def dictionary(filters):
    """Our single-channel filters (K, 1, h, h) as SPORCO's dictionary (h, h, K)."""
    return np.ascontiguousarray(np.moveaxis(filters[:, 0], 0, -1))


def our_filters(D):
    """SPORCO's dictionary (h, h, [1, 1,] K) as our filters (K, 1, h, h)."""
    return np.moveaxis(np.squeeze(np.asarray(D)), -1, 0)[:, None]


def to_our_maps(x, n_filters, shift):
    """SPORCO coefficients (H, W, [n,] n_filters [+ AMS impulse]) -> our maps ([n,] K, H, W).

    SPORCO's circular D*x on the padded grid, masked to the top-left image,
    equals our valid convolution of the maps rolled by h - 1 on both axes.
    """
    maps = np.moveaxis(np.squeeze(np.asarray(x))[..., :n_filters], (0, 1), (-2, -1))
    return np.roll(maps, (shift, shift), axis=(-2, -1))


def map_solver(method, D, S, W, lmbda, max_iter, **options):
    """SPORCO's masked map solver ``method`` (one of MAP_METHODS) for our ``lmbda``."""
    cls = cbpdn.ConvBPDN if method == "AddMaskSim(ConvBPDN)" else cbpdn.ConvBPDNMaskDcpl
    opt = cls.Options({"Verbose": False, "MaxMainIter": max_iter,
                       "RelStopTol": 1e-14, **options})
    if cls is cbpdn.ConvBPDN:
        return cbpdn.AddMaskSim(cbpdn.ConvBPDN, D, S, W, 1 / lmbda, opt)
    return cbpdn.ConvBPDNMaskDcpl(D, S, 1 / lmbda, W, opt)


def dictionary_learner(filters, images, lmbda, max_iter):
    """ConvBPDNMaskDictLearn (ADMM maps, CNS dictionary) on our images (n, H, W)."""
    S, W = layout(images, filters.shape[-1])
    opt = cbpdndlmd.ConvBPDNMaskDictLearn.Options(
        {"Verbose": False, "MaxMainIter": max_iter}, xmethod="admm", dmethod="cns")
    return cbpdndlmd.ConvBPDNMaskDictLearn(
        dictionary(filters), S, 1 / lmbda, W, opt, xmethod="admm", dmethod="cns")


def online_learner(filters, lmbda, dtype=np.float32):
    """OnlineConvBPDNDictLearn with its default options for our ``lmbda``."""
    from sporco.dictlrn import onlinecdl

    opt = onlinecdl.OnlineConvBPDNDictLearn.Options({"Verbose": False, "DataType": dtype})
    return onlinecdl.OnlineConvBPDNDictLearn(dictionary(filters).astype(dtype), 1 / lmbda, opt)
