import numpy as np
import pytest

from mantra_jax.data.rng import check_seed, record_rng


def test_record_rng_is_a_pure_function_of_seed_and_index():
    a = record_rng(3, 17).integers(0, 2**62, 4)
    b = record_rng(3, 17).integers(0, 2**62, 4)
    np.testing.assert_array_equal(a, b)
    expected = np.random.Generator(np.random.PCG64(np.random.SeedSequence([3, 17]))).integers(0, 2**62, 4)
    np.testing.assert_array_equal(a, expected)


def test_record_rng_differs_across_indices_and_seeds():
    draws = {tuple(record_rng(s, i).integers(0, 2**62, 2)) for s in range(3) for i in range(50)}
    assert len(draws) == 150


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_check_seed_rejects_non_integers_and_negatives(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        check_seed(bad)


def test_check_seed_accepts_numpy_integers():
    assert check_seed(np.int64(5)) == 5
