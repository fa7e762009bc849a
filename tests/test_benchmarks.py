"""The benchmark harness measures what it says: same objective as ndstyle, honest curve reading."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from report import bytes_per_position_trend, linear_fit, time_to_reach  # noqa: E402


def test_time_to_reach_is_the_first_snapshot_at_or_below_the_target() -> None:
    curve = [[0.0, 10.0], [1.0, 6.0], [2.0, 4.0], [3.0, 5.0], [4.0, 3.0]]
    assert time_to_reach(curve, 4.0) == 2.0
    assert time_to_reach(curve, 3.5) == 4.0
    assert time_to_reach(curve, 1.0) is None


def test_linear_fit_recovers_a_line_and_flags_a_bend() -> None:
    xs = [1.0, 2.0, 4.0, 8.0]
    line = linear_fit(xs, [5 + 3 * x for x in xs])
    assert line["a"] == pytest.approx(5) and line["b"] == pytest.approx(3)
    assert line["r2"] == pytest.approx(1) and line["worst_residual"] == pytest.approx(0, abs=1e-12)
    bent = linear_fit(xs, [x**2 for x in xs])
    assert bent["r2"] < 0.99 and bent["worst_residual"] > 0.1


def test_bytes_per_position_fall_with_a_fixed_part_and_rise_with_a_quadratic_term() -> None:
    sizes = [8.0, 1.0, 4.0, 2.0]  # unsorted on purpose
    smallest, largest = bytes_per_position_trend(sizes, [100 + 3 * n for n in sizes])
    assert smallest == pytest.approx(103) and largest == pytest.approx(3 + 100 / 8)
    smallest, largest = bytes_per_position_trend(sizes, [3 * n + n * n for n in sizes])
    assert (smallest, largest) == (pytest.approx(4), pytest.approx(11))


def test_reference_objective_equals_the_benchmark_evaluator() -> None:
    """The textbook implementation optimises exactly the J that ndstyle's evaluator reports."""
    from reference import TextbookObjective
    from workers import objective

    from ndstyle.extractors import build_extractor

    net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    g = torch.Generator().manual_seed(0)
    content, style, candidate = (torch.rand(3, 48, 40, generator=g) for _ in range(3))
    style = style[:, :40, :36]  # a style of another size
    textbook = TextbookObjective(
        net,
        content,
        style,
        content_layers=list(net.default_content_layers),
        style_layers=dict(net.default_style_layers),
        content_weight=1.0,
        style_weight=net.default_style_weight,
    )
    with torch.no_grad():
        mine = float(textbook(candidate[None]))
    assert mine == pytest.approx(objective(net, content, style, candidate), rel=1e-5)
    assert mine > 0


def test_ratios_against_the_references_final_and_best_iterates() -> None:
    """The textbook's last iterate can be worse than an earlier one: both ratios are reported."""
    from report import _targets, _tq_rows

    reference = {
        "method": "reference",
        "seconds": 100.0,
        "objective": 30.0,
        "curve": [[0, 90], [50, 10], [100, 30]],
    }
    ours = {"method": "ndstyle", "seconds": 40.0, "objective": 12.0, "curve": [[0, 90], [20, 25], [40, 12]]}
    runs = {"tq/reference/pair/512": reference, "tq/ndstyle/pair/512": ours}
    (row,) = _tq_rows(runs)
    assert row["ratio"] == pytest.approx(0.20) and row["ref_best"] == 10
    assert row["reach_best"] is None and row["ratio_best"] is None  # never got to J = 10
    table = "\n".join(_targets(runs, [row]))
    assert "pair 0.200 | yes" in table and "pair never | **no**" in table


def test_the_detail_injection_experiment_still_patches_the_engines_upsampling(monkeypatch) -> None:
    """benchmarks/detail_injection.py replaces one line of the engine; if the line changes, the
    experiment must fail loudly, not measure the unpatched engine twice."""
    import inspect

    import detail_injection

    import ndstyle.engine as engine

    assert detail_injection.UPSAMPLE in inspect.getsource(engine._Run._levels)
    monkeypatch.setattr(engine._Run, "_levels", engine._Run._levels)  # restored after the test
    original = engine._Run._levels
    source = detail_injection.patch_levels()
    assert detail_injection.WITH_DETAIL.splitlines()[2].strip() in source
    assert (
        engine._Run._levels is not original and engine._Run._levels.__code__.co_filename == "detail_injection"
    )
