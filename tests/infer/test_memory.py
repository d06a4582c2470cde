"""The memory planner (mantra_jax.infer.memory): budgets, tile choice, size parsing; and its use by the CLI."""

import pytest

from mantra_jax.infer.memory import (COSTS, FALLBACK, GIB, MARGIN, MIB, TILE_LADDER, Cost, MemoryBudgetError,
                                     cost_for, estimate_tiled_bytes, estimate_whole_bytes, parse_bytes,
                                     plan_memory)
from mantra_jax.infer.plan import plan

# the release trunk's halos (tests/infer/test_halo.py checks receptive_halo): featex 14, LADN 24 for Ptrain4
FEATEX, LADN, CHANNELS = 14, 24, 64
PTRAIN4 = COSTS[("ptrain4", "auto")]


def _largest_region(h, w, tile, halo, bounded):
    if bounded:  # the ladder's top: the same for every image, so one tile (one set of shapes) per run
        return (tile + 2 * halo) ** 2
    return max((r.reg1 - r.reg0) * (c.reg1 - c.reg0) for r, c in plan(h, w, tile, halo))


def test_the_measured_table_has_positive_costs_and_unknown_variants_fall_back():
    for cost in COSTS.values():
        assert cost.fixed > 100 * MIB and min(cost.whole, cost.pass1, cost.pass2, cost.host) > 0
        # a tiled pass computes fewer intermediates per pixel than the whole network
        assert cost.pass2 < cost.whole
    assert cost_for("tiny", "auto") == COSTS[FALLBACK] and cost_for("ptrain4") == PTRAIN4


@pytest.mark.parametrize("h, w", [(480, 640), (768, 1024), (3000, 4000), (1, 5000)])
@pytest.mark.parametrize("budget", [1.25 * GIB, 2 * GIB, 4 * GIB, 16 * GIB])
@pytest.mark.parametrize("bounded", [False, True])
def test_the_plan_fits_the_budget_and_takes_the_largest_tile_that_fits(h, w, budget, bounded):
    budget = int(budget)
    try:
        p = plan_memory(h, w, budget, PTRAIN4, FEATEX, LADN, CHANNELS, bounded=bounded)
    except MemoryBudgetError:  # then not even the smallest tile fits, with the features on disk
        assert estimate_tiled_bytes(PTRAIN4, h, w, TILE_LADDER[-1], FEATEX, LADN, CHANNELS, bounded=bounded,
                                    store="file") > MARGIN * budget
        return
    assert p.estimate <= MARGIN * budget
    whole = estimate_whole_bytes(PTRAIN4, h, w)
    if p.tile is None:
        assert not bounded and p.estimate == whole
        return
    assert bounded or whole > MARGIN * budget  # whole-image inference is taken whenever it fits
    # the estimate is the model's: fixed + host + the larger pass (+ the features when kept in memory)
    network = max(PTRAIN4.pass1 * _largest_region(h, w, p.tile, FEATEX, bounded),
                  PTRAIN4.pass2 * _largest_region(h, w, p.tile, LADN, bounded))
    single = not bounded and len(plan(h, w, p.tile, FEATEX)) == len(plan(h, w, p.tile, LADN)) == 1
    expected = whole if single else (PTRAIN4.fixed + PTRAIN4.host * h * w + network
                                     + (4 * CHANNELS * h * w if p.store == "memory" else 0))
    assert p.estimate == int(expected)
    # every larger tile of the ladder is over the budget, whatever the store
    for larger in TILE_LADDER[:TILE_LADDER.index(p.tile)]:
        assert estimate_tiled_bytes(PTRAIN4, h, w, larger, FEATEX, LADN, CHANNELS, bounded=bounded,
                                    store="file") > MARGIN * budget


def test_bounded_shapes_give_images_of_common_sizes_one_tile():
    tiles = {plan_memory(h, w, 2 * GIB, PTRAIN4, FEATEX, LADN, CHANNELS, bounded=True).tile
             for h, w in ((256, 256), (480, 640), (768, 1024), (1200, 1600))}
    assert len(tiles) == 1


def test_a_smaller_budget_never_gets_a_larger_tile_and_large_images_keep_features_on_disk():
    tiles = [plan_memory(3000, 4000, int(b * GIB), PTRAIN4, FEATEX, LADN, CHANNELS).tile for b in (2, 3, 6, 12)]
    assert tiles == sorted(tiles) and tiles[0] < tiles[-1]
    # 4000 x 3000 x 64 float32 features are 2.9 GiB: over any budget here, so in an unlinked file
    assert plan_memory(3000, 4000, 6 * GIB, PTRAIN4, FEATEX, LADN, CHANNELS).store == "file"


def test_a_budget_below_the_process_itself_is_refused():
    with pytest.raises(MemoryBudgetError, match="--memory"):
        plan_memory(480, 640, int(PTRAIN4.fixed), PTRAIN4, FEATEX, LADN, CHANNELS)
    with pytest.raises(ValueError):
        plan_memory(0, 640, GIB, PTRAIN4, FEATEX, LADN, CHANNELS)


def test_estimates_grow_with_the_image_and_the_tile():
    cost = Cost(fixed=1e8, whole=3000.0, pass1=2000.0, pass2=1000.0, host=20.0)
    assert estimate_whole_bytes(cost, 100, 200) == int(1e8 + 3020 * 20000)
    a = estimate_tiled_bytes(cost, 2000, 2000, 256, FEATEX, LADN, CHANNELS, bounded=False, store="file")
    b = estimate_tiled_bytes(cost, 2000, 2000, 512, FEATEX, LADN, CHANNELS, bounded=False, store="file")
    c = estimate_tiled_bytes(cost, 2000, 2000, 512, FEATEX, LADN, CHANNELS, bounded=False, store="memory")
    assert a < b < c and c - b == 4 * CHANNELS * 2000 * 2000
    assert b == int(1e8 + 20 * 4e6 + max(2000 * (512 + 28) ** 2, 1000 * (512 + 48) ** 2))


@pytest.mark.parametrize("text, value", [("2G", 2 * GIB), ("2g", 2 * GIB), ("512M", 512 * MIB),
                                         ("1.5GiB", 3 * GIB // 2),
                                         ("4gb", 4 * GIB), ("3000000", 3000000), (" 64 MiB ", 64 * MIB),
                                         ("1T", 1 << 40), ("8k", 8192), (".5G", GIB // 2)])
def test_sizes_parse_with_binary_units(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "G", "2X", "-1G", "0", "0.1", "abc", "1e9", "nan", "inf", "2 G B", "2GG"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_bytes(text)
