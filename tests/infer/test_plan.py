"""Tile plans: cores cover each axis once, regions reach the halo beyond their core inside the image."""

import numpy as np
import pytest

from mantra_jax.infer.plan import Span, axis_plan, bounded_axis_plan, core_weights, crop_core


@pytest.mark.parametrize("length,tile,halo", [(1, 1, 0), (10, 3, 2), (100, 16, 44), (131, 7, 24), (57, 8, 24),
                                              (600, 512, 44), (4000, 512, 44)])
def test_axis_plan_covers_every_pixel_once_with_regions_of_one_length(length, tile, halo):
    spans = axis_plan(length, tile, halo)
    cover = np.zeros(length, int)
    for s in spans:
        cover[s.core0:s.core1] += 1
        assert 0 <= s.reg0 <= s.core0 < s.core1 <= s.reg1 <= length
    assert (cover == 1).all()
    assert len({s.reg1 - s.reg0 for s in spans}) == 1
    assert spans[0].reg1 - spans[0].reg0 == min(length, tile + 2 * halo)


@pytest.mark.parametrize("length,tile,halo", [(100, 16, 44), (131, 7, 24), (57, 8, 24), (4000, 512, 63)])
def test_axis_plan_regions_reach_the_halo_beyond_the_core_inside_the_axis(length, tile, halo):
    for s in axis_plan(length, tile, halo):
        assert s.reg0 == 0 or s.core0 - s.reg0 >= halo
        assert s.reg1 == length or s.reg1 - s.core1 >= halo


@pytest.mark.parametrize("length,tile,halo", [(100, 16, 10), (131, 7, 24), (57, 8, 24), (4000, 512, 14),
                                              (384, 512, 24), (600, 512, 14), (70, 8, 24)])
def test_bounded_axis_plan_covers_once_with_one_ladder_length_reaching_the_halo(length, tile, halo):
    spans = bounded_axis_plan(length, tile, halo, 32)
    cover = np.zeros(length, int)
    for s in spans:
        cover[s.core0:s.core1] += 1
        assert s.reg0 == 0 or s.core0 - s.reg0 >= halo
        assert s.reg1 == length or s.reg1 - s.core1 >= halo
    assert (cover == 1).all()
    (g,) = {s.reg1 - s.reg0 for s in spans}
    assert g == length or (g - tile - 2 * halo) % 32 == 0 and g <= tile + 2 * halo




def test_core_weights_mark_the_core_and_crop_core_cuts_it_from_a_region():
    rows, cols = Span(3, 7, 1, 9), Span(0, 2, 0, 5)
    np.testing.assert_array_equal(core_weights(rows), [0, 0, 1, 1, 1, 1, 0, 0])
    region = np.arange(8 * 5).reshape(8, 5)
    np.testing.assert_array_equal(crop_core(region, rows, cols), region[2:6, 0:2])
