"""ConvNd extractors for 1, 2 and 3 spatial axes: shapes, early stop, freezing, weights files."""

from __future__ import annotations

import pytest
import torch

from ndstyle.errors import OptionError, ShapeError, WeightsIntegrityError
from ndstyle.extractors import ConvNdConfig, ConvNdExtractor, build_extractor

from conftest import SPATIAL_DIMS

SHAPES = {1: (32,), 2: (16, 16), 3: (8, 8, 8)}


def small(spatial_dims: int, in_channels: int = 2, seed: int = 0) -> ConvNdExtractor:
    return ConvNdExtractor.random(spatial_dims, in_channels, seed=seed, widths=(4, 8, 16))


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_named_layers_and_shapes(spatial_dims: int) -> None:
    net = small(spatial_dims)
    assert net.layer_names[:4] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2")
    x = torch.rand(2, 2, *SHAPES[spatial_dims])
    feats = net(x, ["relu1_1", "relu2_1", "relu3_2"])
    n = SHAPES[spatial_dims][0]
    assert feats["relu1_1"].shape == (2, 4, *([n] * spatial_dims))
    assert feats["relu2_1"].shape == (2, 8, *([n // 2] * spatial_dims))
    assert feats["relu3_2"].shape == (2, 16, *([n // 4] * spatial_dims))
    assert (feats["relu1_1"] >= 0).all()
    assert net.min_input_size(["relu3_1"]) == 8  # 2 poolings, and reflect padding needs 2 positions


def test_forward_stops_at_the_deepest_requested_layer() -> None:
    net = small(2)
    seen: list[str] = []
    for name, module in net.layers.items():
        module.register_forward_hook(lambda *_, name=name: seen.append(name))
    net(torch.rand(1, 2, 16, 16), ["relu2_1"])
    assert seen[-1] == "relu2_1" and "conv2_2" not in seen


def test_parameters_are_frozen_but_input_gets_gradients() -> None:
    net = small(3)
    assert all(not p.requires_grad for p in net.parameters())
    x = torch.rand(1, 2, 8, 8, 8, requires_grad=True)
    net(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_seeded_weights_are_reproducible() -> None:
    a, b, c = small(1, seed=3), small(1, seed=3), small(1, seed=4)
    assert torch.equal(a.layers["conv2_1"].weight, b.layers["conv2_1"].weight)
    assert not torch.equal(a.layers["conv2_1"].weight, c.layers["conv2_1"].weight)


def test_unknown_layer_suggests_the_closest() -> None:
    with pytest.raises(OptionError, match="Did you mean 'relu2_1'"):
        small(2)(torch.rand(1, 2, 16, 16), ["relu2-1"])


def test_wrong_dims_and_channels_are_refused() -> None:
    net = small(2)
    with pytest.raises(ShapeError, match="2 spatial axes, got 3"):
        net(torch.rand(1, 2, 8, 8, 8), ["relu1_1"])
    with pytest.raises(ShapeError, match="2 input channel"):
        net(torch.rand(1, 3, 8, 8), ["relu1_1"])


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_save_load_round_trip_is_exact(spatial_dims: int, tmp_path) -> None:
    net = ConvNdExtractor(
        ConvNdConfig(
            spatial_dims=spatial_dims,
            in_channels=1,
            widths=(4, 8),
            dilations=(1, 2),
            pooling="max",
            input_mean=(0.5,),
            input_std=(2.0,),
        ),
        seed=9,
    )
    path = tmp_path / "net.safetensors"
    digest = net.save(path, extra_metadata={"modality": "test"})
    loaded = ConvNdExtractor.from_file(path, expected_sha256=digest)
    assert loaded.config == net.config
    for key, value in net.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    x = torch.rand(1, 1, *SHAPES[spatial_dims])
    torch.testing.assert_close(
        net(x, ["relu2_2"])["relu2_2"], loaded(x, ["relu2_2"])["relu2_2"], rtol=0, atol=0
    )
    via_builder = build_extractor(str(path), spatial_dims=spatial_dims, in_channels=1)
    assert via_builder.layer_names == net.layer_names


def test_weights_of_other_dims_or_channels_are_refused(tmp_path) -> None:
    path = tmp_path / "ecg.safetensors"
    ConvNdExtractor.random(1, 12, widths=(4,)).save(path, extra_metadata={"modality": "signal"})
    with pytest.raises(WeightsIntegrityError, match=r"1-D 'signal' data.*input is 3-D"):
        build_extractor(path, spatial_dims=3, in_channels=12)
    with pytest.raises(WeightsIntegrityError, match=r"12 channel\(s\), but the input is 1-D with 1 channel"):
        build_extractor(path, spatial_dims=1, in_channels=1)


def test_unknown_extractor_name_suggests() -> None:
    with pytest.raises(OptionError, match="Did you mean 'random'"):
        build_extractor("randon", spatial_dims=1, in_channels=1)


def test_invalid_configs_are_refused() -> None:
    with pytest.raises(OptionError, match="odd"):
        ConvNdConfig(spatial_dims=2, in_channels=1, kernel_size=4)
    with pytest.raises(OptionError, match="spatial_dims"):
        ConvNdConfig(spatial_dims=4, in_channels=1)
    with pytest.raises(OptionError, match="Did you mean 'max'"):
        ConvNdConfig(spatial_dims=2, in_channels=1, pooling="maxx")
