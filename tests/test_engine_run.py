"""The engine's run object: stopping at convergence, memory plan, fingerprint, default extractor."""

from __future__ import annotations

import inspect
import json
import logging

import pytest
import torch

from ndstyle import ConvNdExtractor, stylize
from ndstyle.checkpoint import load_checkpoint, load_run_state
from ndstyle.errors import InputFileError, OptionError
from ndstyle.memory import LBFGS_HISTORY, estimate_memory, format_size, plan_memory

from conftest import make_pair


def _net(spatial_dims: int) -> ConvNdExtractor:
    return ConvNdExtractor.random(spatial_dims, 1, seed=0, widths=(4, 8))


def _converged(totals: list[float], k: int, tol: float) -> bool:
    """The rule: after step k, the best J fell by at most tol (relative) over the last 10 steps."""
    if k <= 10:
        return False
    then, now = min(totals[: k - 10]), min(totals[:k])
    return then - now <= tol * abs(then)


@pytest.mark.parametrize("spatial_dims", [1, 2, pytest.param(3, marks=pytest.mark.slow)])
def test_tol_stops_each_level_and_says_where(spatial_dims: int) -> None:
    content, style = make_pair(spatial_dims)
    options = dict(extractor=_net(spatial_dims), steps=[30, 30], scales=2, progress=False)
    full = stylize(content, style, **options)
    assert full.level_steps == [30, 30]
    tol = 0.3
    early = stylize(content, style, tol=tol, **options)
    assert len(early.level_steps) == 2 and sum(early.level_steps) == len(early.history)
    assert sum(early.level_steps) < 60
    for level, steps in enumerate(early.level_steps):  # each level stopped exactly where the rule says
        totals = [r.total for r in early.history if r.scale == level]
        assert not any(_converged(totals, k, tol) for k in range(1, steps))
        assert steps == 30 or _converged(totals, steps, tol)
    first = early.level_steps[0]  # until the first stop, the run is the tol=0 run
    assert [r.total for r in early.history[:first]] == [r.total for r in full.history[:first]]


@pytest.mark.parametrize("bad", [-0.1, 1.0, "x", True])
def test_tol_is_checked(bad: object) -> None:
    content, style = make_pair(1)
    with pytest.raises(OptionError, match="tol must be"):
        stylize(content, style, extractor=_net(1), steps=1, progress=False, tol=bad)


def test_lbfgs_history_is_counted_and_shortened_to_fit(caplog: pytest.LogCaptureFixture) -> None:
    net = _net(2)
    layers = list(dict.fromkeys([*net.default_content_layers, *net.default_style_layers]))
    full = estimate_memory(net, (48, 48), layers)
    short = estimate_memory(net, (48, 48), layers, history_size=10)
    assert full - short == 2 * (LBFGS_HISTORY - 10) * 48 * 48 * 4  # two input-sized fp32 vectors per pair
    assert estimate_memory(net, (48, 48), layers, optimizer="adam") < short
    plan = plan_memory(net, (48, 48), layers, limit=short)
    assert plan.history_size == 10 and plan.tile is None and plan.needed <= short
    assert format_size(full) in plan.note and "history shortened from 50 to 10" in plan.note
    content, style = make_pair(2)
    with caplog.at_level(logging.WARNING, logger="ndstyle"):
        result = stylize(content, style, extractor=net, steps=2, scales=1, progress=False, max_memory=short)
    assert result.memory is not None and result.memory.history_size == 10
    assert [r.getMessage() for r in caplog.records if "history" in r.getMessage()] == [plan.note]


def test_a_run_that_cannot_fit_even_tiled_is_refused_with_the_numbers() -> None:
    content, style = make_pair(2)
    with pytest.raises(OptionError, match=r"needs about .*iB .* but 1\.95 KiB are allowed \(max_memory\)"):
        stylize(content, style, extractor=_net(2), steps=1, scales=1, progress=False, max_memory=2000)


def test_fingerprint_holds_every_result_changing_keyword(tmp_path) -> None:
    """Built from the bound arguments: every keyword of stylize is in it unless listed as harmless."""
    from ndstyle import engine

    content, style = make_pair(1)
    checkpoint = tmp_path / "c.safetensors"
    stylize(
        content,
        style,
        extractor=_net(1),
        steps=2,
        scales=1,
        progress=False,
        checkpoint=checkpoint,
        checkpoint_every=1,
    )
    saved = load_run_state(checkpoint)
    options = json.loads(saved.fingerprint["options"])
    keywords = set(inspect.signature(stylize).parameters)
    tensors = {"content", "style", "mask", "extractor"}
    assert set(options) - {"resolved"} == keywords - set(engine._NOT_FINGERPRINTED) - tensors
    assert {"content", "styles", "mask", "extractor", "extractor weights"} <= set(saved.fingerprint)
    with pytest.raises(OptionError, match=r"differs in: options \(tol\)"):
        stylize(
            content,
            style,
            extractor=_net(1),
            steps=2,
            scales=1,
            progress=False,
            checkpoint=checkpoint,
            resume=True,
            tol=0.5,
        )


def test_checkpoint_of_the_other_kind_is_refused(tmp_path) -> None:
    content, style = make_pair(1)
    checkpoint = tmp_path / "c.safetensors"
    stylize(
        content,
        style,
        extractor=_net(1),
        steps=1,
        scales=1,
        progress=False,
        checkpoint=checkpoint,
        checkpoint_every=1,
    )
    assert load_checkpoint(checkpoint, "transfer")["step"] == 1
    with pytest.raises(InputFileError, match="not a readable ndstyle checkpoint of a training.*'transfer'"):
        load_checkpoint(checkpoint, "training")


def test_rgb_images_without_an_extractor_get_the_pretrained_vgg_or_one_line(monkeypatch, caplog) -> None:
    from ndstyle import engine

    content, style = make_pair(2, channels=3)
    monkeypatch.setattr(engine, "_pretrained_vgg_present", lambda: False)
    with caplog.at_level(logging.INFO, logger="ndstyle"):
        result = stylize(content, style, steps=1, scales=1, progress=False)
    assert "ConvNd" in result.extractor
    lines = [r.getMessage() for r in caplog.records if "extractor=None" in r.getMessage()]
    assert len(lines) == 1 and "random ConvNd" in lines[0] and "extractor='auto'" in lines[0]
    monkeypatch.setattr(engine, "_pretrained_vgg_present", lambda: True)
    calls = []
    monkeypatch.setattr(engine, "build_extractor", lambda spec, **kw: calls.append(spec) or _net(2))
    engine._resolve_extractor(None, torch.zeros(1, 3, 8, 8), 0)
    assert calls == ["auto"]
