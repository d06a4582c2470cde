import numpy as np
import pytest

from mantra_jax.ops.srm import srm_kernel


def _spec_filters():
    s1 = np.zeros((5, 5))
    s1[1:4, 1:4] = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4
    s2 = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                   [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]) / 12
    s3 = np.zeros((5, 5))
    s3[2, 1:4] = np.array([1, -2, 1]) / 2
    return [s1, s2, s3]


def test_srm_kernel_matches_spec_layout():
    k = srm_kernel(np.float64)
    assert k.shape == (5, 5, 3, 9)
    for i, f in enumerate(_spec_filters()):
        for c in range(3):
            np.testing.assert_array_equal(k[:, :, c, 3 * i + c], f)
            for other in set(range(3)) - {c}:
                assert not k[:, :, other, 3 * i + c].any()


def test_srm_filters_are_high_pass():
    np.testing.assert_allclose(srm_kernel(np.float64).sum(axis=(0, 1, 2)), 0.0, atol=1e-12)


def test_srm_kernel_equals_reference_file(reference_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(reference_path("ptrain4like_weights.h5")) as f:
        stored = f["Featex/b1c1/srm:0"][...]
    np.testing.assert_allclose(srm_kernel(), stored, atol=1e-7)
