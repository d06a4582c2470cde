import jax
import numpy as np
import pytest

from mantra_jax.train.plateau import plateau_init, plateau_update


def _run(values, **kw):
    state, scales = plateau_init(), []
    for v in values:
        state = plateau_update(state, v, **kw)
        scales.append(float(state.scale))
    return state, scales


def test_scale_halves_after_patience_non_improving_evaluations():
    # 1.0 improves (best=1.0), then 3 evaluations without improvement: halved at the third.
    _, scales = _run([1.0, 1.2, 1.0, 1.5], patience=3, factor=0.5)
    assert scales == [1.0, 1.0, 1.0, 0.5]


def test_scale_halves_again_after_another_patience_evaluations():
    state, scales = _run([1.0] + [2.0] * 6, patience=3, factor=0.5)
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    assert int(state.reductions) == 2


def test_improvement_resets_the_count():
    _, scales = _run([1.0, 1.1, 1.1, 0.9, 1.1, 1.1], patience=3)
    assert scales == [1.0] * 6


def test_paper_rule_halves_after_20_epochs_without_improvement():
    _, scales = _run([1.0] + [1.0] * 20, patience=20, factor=0.5)  # equal is not an improvement
    assert scales[:20] == [1.0] * 20 and scales[20] == 0.5


def test_nan_never_improves():
    state, scales = _run([np.nan, np.nan], patience=2)
    assert scales == [1.0, 0.5] and np.isinf(float(state.best))


def test_min_delta_requires_a_large_enough_improvement():
    _, scales = _run([1.0, 0.99, 0.98], patience=2, min_delta=0.05)
    assert scales == [1.0, 1.0, 0.5]


def test_update_is_jittable_and_matches_eager():
    f = jax.jit(lambda s, v: plateau_update(s, v, patience=2))
    s1, s2 = plateau_init(), plateau_init()
    for v in [3.0, 4.0, 5.0, 2.0]:
        s1, s2 = f(s1, v), plateau_update(s2, v, patience=2)
        assert float(s1.scale) == float(s2.scale) and int(s1.bad_evals) == int(s2.bad_evals)


@pytest.mark.parametrize("kw", [{"patience": 0}, {"factor": 1.0}, {"factor": 0.0}, {"min_delta": -1.0}])
def test_bad_settings_raise(kw):
    with pytest.raises(ValueError):
        plateau_update(plateau_init(), 1.0, **kw)
