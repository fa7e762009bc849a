"""ndstyle.training: contrastive training of ConvNd extractors on the user's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ndstyle.cli import main
from ndstyle.errors import (
    InputFileError,
    InterruptedRun,
    OptionError,
    OutputFileError,
    ShapeError,
    WeightsIntegrityError,
)
from ndstyle.extractors import ConvNdExtractor, build_extractor
from ndstyle.extractors.convnd import check_weights_fit
from ndstyle.training import calibrate_scales, gram_embedding, train_extractor

TINY = {"widths": (8, 16, 32), "progress": False}


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """These tiny networks run fastest on one thread (two threads contend on a shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_textures(root: Path, seed: int, n_classes: int = 4, per_class: int = 3, length: int = 4096) -> Path:
    """1-D textures: a class-specific tone (random phase) under strong, file-varying low-pass noise.

    The noise carries most of the energy, so random filters' Gram statistics are dominated by it;
    a network that learns to look at the tone can tell the classes apart.
    """
    rng = np.random.default_rng(seed)
    freqs = np.linspace(0.12, 0.30, n_classes)
    t = np.arange(length)
    kernel = np.hanning(31) / np.hanning(31).sum()
    for c in range(n_classes):
        (root / f"class{c}").mkdir(parents=True)
        for f in range(per_class):
            low = np.convolve(rng.standard_normal(length + 64), kernel, mode="same")[32 : 32 + length]
            low = low / low.std() * 3.0 * (0.5 + rng.random())
            tone = np.sin(2 * np.pi * freqs[c] * t + rng.uniform(0, 2 * np.pi))
            x = low + tone + 0.05 * rng.standard_normal(length)
            np.save(root / f"class{c}" / f"f{f}.npy", x[None].astype(np.float32))
    return root


def make_files(root: Path, shapes: list[tuple[int, ...]], seed: int = 0) -> Path:
    """Random smooth arrays ``(C, *spatial)``, one file per shape, with different roughness."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, shape in enumerate(shapes):
        x = rng.standard_normal(shape).cumsum(axis=-1) * (0.1 + i) + rng.standard_normal(shape)
        np.save(root / f"item{i}.npy", x.astype(np.float32))
    return root


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_falls_and_trained_beats_random_weights(tmp_path: Path, seed: int) -> None:
    data = make_textures(tmp_path / "data", seed)
    result = train_extractor(data, steps=150, crop_size=256, seed=seed, **TINY)
    m = result.metrics
    assert np.mean(result.losses[-20:]) < np.mean(result.losses[:20])
    assert m["val_groups"] == 4 and m["val_crops"] == 12 * 8
    assert m["val_nn_accuracy_trained"] > m["val_nn_accuracy_random"]
    assert m["val_nn_accuracy_trained"] > m["chance"]


@pytest.mark.parametrize(
    ("dims", "shape", "crop"), [(2, (2, 24, 96), 16), (3, (1, 12, 12, 48), 8)], ids=["2d", "3d"]
)
def test_same_code_path_for_2d_and_3d(tmp_path: Path, dims: int, shape: tuple[int, ...], crop: int) -> None:
    data = make_files(tmp_path / "data", [shape] * 3)
    result = train_extractor(data, steps=3, crop_size=crop, batch_size=4, widths=(4, 8), progress=False)
    assert result.extractor.spatial_dims == dims and result.extractor.in_channels == shape[0]
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    assert result.metrics["val_task"] == "source file of the nearest other held-out crop"
    assert result.metadata["training"]["data"]["shapes"] == [list(shape)] * 3
    assert result.metadata["modality"] == "array"


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", [(2, 600)] * 3)
    result = train_extractor(data, steps=4, crop_size=64, batch_size=4, seed=3, **TINY)
    path = tmp_path / "w.safetensors"
    result.save(path)
    loaded = ConvNdExtractor.from_file(path, spatial_dims=1, in_channels=2)
    for key, value in result.extractor.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    x = torch.randn(1, 2, 128)
    layers = list(loaded.default_style_layers)
    for name, value in result.extractor(x, layers).items():
        assert torch.equal(value, loaded(x, layers)[name])
    meta = loaded.metadata
    assert meta["modality"] == "array" and meta["training"]["seed"] == 3
    assert meta["preprocessing"]["input_mean"] == list(loaded.config.input_mean)
    assert meta["training"]["data"]["files"] == 3
    assert meta["metrics"]["val_nn_accuracy_trained"] == result.metrics["val_nn_accuracy_trained"]
    mean = (
        torch.from_numpy(
            np.concatenate([np.load(p)[:, :480] for p in sorted((tmp_path / "data").glob("*.npy"))], axis=1)
        )
        .double()
        .mean(1)
    )
    assert torch.allclose(torch.tensor(loaded.config.input_mean, dtype=torch.float64), mean)
    built = build_extractor(str(path), spatial_dims=1, in_channels=2, modality="array")
    assert isinstance(built, ConvNdExtractor)


def test_wrong_dims_channels_or_modality_refused(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", [(2, 600)] * 3)
    path = tmp_path / "w.safetensors"
    train_extractor(data, steps=1, crop_size=64, batch_size=4, **TINY).save(path)
    with pytest.raises(WeightsIntegrityError, match=r"1-D 'array' data with 2 channel\(s\).*2-D"):
        build_extractor(str(path), spatial_dims=2, in_channels=2)
    with pytest.raises(WeightsIntegrityError, match=r"2 channel\(s\).*with 3 channel\(s\).*channels"):
        build_extractor(str(path), spatial_dims=1, in_channels=3)
    meta = {"spatial_dims": 1, "in_channels": 1, "modality": "audio"}
    with pytest.raises(WeightsIntegrityError, match=r"'audio' data.*'signal' data.*wrong modality"):
        check_weights_fit("ecg.safetensors", meta, 1, 1, "signal")
    check_weights_fit("ecg.safetensors", meta, 1, 1, "array")  # generic arrays are accepted


def test_data_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match="same number of channels"):
        train_extractor(make_files(tmp_path / "a", [(1, 300), (2, 300)]), steps=1, **TINY)
    with pytest.raises(ShapeError, match="same number of spatial axes"):
        train_extractor(make_files(tmp_path / "b", [(1, 300), (1, 30, 30)]), steps=1, **TINY)
    with pytest.raises(ShapeError, match="spatial_dims=2"):
        train_extractor(make_files(tmp_path / "c", [(1, 300)] * 2), spatial_dims=2, steps=1, **TINY)
    with pytest.raises(InputFileError, match="at least 2 files"):
        train_extractor(make_files(tmp_path / "d", [(1, 300)]), steps=1, **TINY)
    with pytest.raises(OptionError, match="crop_size=512"):
        train_extractor(make_files(tmp_path / "e", [(1, 300)] * 2), crop_size=512, val_fraction=0, **TINY)
    with pytest.raises(InputFileError, match="no files"):
        (tmp_path / "empty").mkdir()
        train_extractor(tmp_path / "empty", **TINY)


def test_interrupted_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    data = make_files(tmp_path / "data", [(1, 700)] * 4)
    opts = dict(steps=6, crop_size=64, batch_size=4, seed=1, **TINY)
    straight = train_extractor(data, **opts)
    ckpt = tmp_path / "state.safetensors"

    def stop_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(InterruptedRun, match="step 3"):
        train_extractor(data, checkpoint=ckpt, checkpoint_every=100, callback=stop_at_3, **opts)
    assert ckpt.exists()
    with pytest.raises(OutputFileError, match="resume"):
        train_extractor(data, checkpoint=ckpt, **opts)
    with pytest.raises(OptionError, match="lr differ"):
        train_extractor(data, checkpoint=ckpt, resume=True, **{**opts, "lr": 0.01})
    resumed = train_extractor(data, checkpoint=ckpt, resume=True, **opts)
    assert resumed.losses == straight.losses and resumed.steps == 6
    for key, value in straight.extractor.state_dict().items():
        assert torch.equal(value, resumed.extractor.state_dict()[key])


def test_calibration_keeps_features_and_matches_random_scale() -> None:
    reference = ConvNdExtractor.random(2, 1, seed=0, widths=(4, 8))
    net = ConvNdExtractor.random(2, 1, seed=5, widths=(4, 8))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    x = torch.rand(4, 1, 16, 16)
    layers = list(net.default_style_layers)
    before = gram_embedding(net, x, layers)
    calibrate_scales(net, reference, x)
    assert torch.allclose(gram_embedding(net, x, layers), before, atol=1e-5)
    for name in layers:
        ours, theirs = net(x, [name])[name], reference(x, [name])[name]
        assert torch.allclose(ours.pow(2).mean(), theirs.pow(2).mean(), rtol=1e-4)


def test_cli_train_then_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_files(tmp_path / "data", [(1, 600)] * 3)
    out = tmp_path / "w.safetensors"
    args = ["train", str(data), "-o", str(out), "--steps", "3", "--crop-size", "64", "--batch-size", "4"]
    assert main([*args, "--widths", "4,8", "--seed", "2"]) == 0
    assert out.exists() and not (tmp_path / "w.ckpt.safetensors").exists()
    err = capsys.readouterr().err
    assert "trained" in err and "random weights" in err
    before = out.read_bytes()
    assert main([*args, "-q"]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main([*args, "-q", "--overwrite", "--widths", "4,8", "--seed", "2"]) == 0
    assert out.read_bytes() == before  # seeded: the same bytes again
    result = tmp_path / "styled.npy"
    content, style = sorted(data.glob("*.npy"))[:2]
    run = ["run", str(content), str(style), "-o", str(result), "-e", str(out), "-n", "2", "-q"]
    assert main(run) == 0
    assert np.load(result).shape == np.load(content).shape
    assert main(["train", str(data), "-o", str(tmp_path / "x.safetensors"), "--dims", "2", "-q"]) == 1
    assert "spatial_dims=2" in capsys.readouterr().err


def test_run_refuses_weights_of_another_modality(tmp_path: Path) -> None:
    import ndstyle

    x = torch.rand(1, 64)
    path = tmp_path / "w.safetensors"
    ConvNdExtractor.random(1, 1, widths=(4,)).save(path, extra_metadata={"modality": "audio"})
    ecg = ndstyle.Loaded(x, {"sample_rate": 250.0}, modality="signal")
    with pytest.raises(WeightsIntegrityError, match=r"'audio' data.*'signal' data.*wrong modality"):
        ndstyle.transfer(ecg, ecg, extractor=str(path), steps=1, progress=False)
    ConvNdExtractor.random(1, 1, widths=(4,)).save(
        path, extra_metadata={"modality": "signal"}, overwrite=True
    )
    result = ndstyle.transfer(ecg, ecg, extractor=str(path), steps=1, progress=False)
    assert result.output.shape == (1, 64)


def test_top_level_api() -> None:
    import ndstyle

    assert ndstyle.train_extractor is train_extractor


@pytest.mark.parametrize("shape", [(2, 40), (1, 12, 10), (1, 6, 8, 10)], ids=["1d", "2d", "3d"])
def test_mix_crops_is_the_stated_mixture(shape: tuple[int, ...]) -> None:
    from ndstyle.training import Mixing, mix_crops

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, *shape, generator=g) + 3.0, torch.randn(4, *shape, generator=g) * 5 + 3.0
    mean = torch.full((shape[0],), 3.0)
    plain = Mixing(max_gain=1.0, flip=False)
    assert torch.allclose(mix_crops(a, b, mean, torch.Generator().manual_seed(1), plain, fixed_mix=0.0), a)
    mixed = mix_crops(a, b, mean, torch.Generator().manual_seed(1), plain, fixed_mix=0.5)
    added = mixed - a  # 0.5 x b's deviation, rescaled to a's RMS level
    axes = tuple(range(1, a.ndim))
    ratio = added.pow(2).mean(axes).sqrt() / (a - 3.0).pow(2).mean(axes).sqrt()
    assert torch.allclose(ratio, torch.full((4,), 0.5), atol=1e-5)
    full = [mix_crops(a, b, mean, torch.Generator().manual_seed(2)) for _ in range(2)]
    assert torch.equal(full[0], full[1])  # seeded


@pytest.mark.parametrize("seed", [0, 1])
def test_mixtures_objective_beats_random_weights_on_mixtures(tmp_path: Path, seed: int) -> None:
    data = make_textures(tmp_path / "data", seed)
    result = train_extractor(data, steps=150, crop_size=256, seed=seed, objective="mixtures", **TINY)
    m = result.metrics
    assert m["objective"] == "mixtures" and result.metadata["training"]["objective"].startswith("supervised")
    assert m["val_mix_nn_accuracy_trained"] > m["val_mix_nn_accuracy_random"]
    assert m["val_mix_nn_accuracy_trained"] > m["chance"]


def test_objective_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_files(tmp_path / "data", [(1, 600)] * 3)
    with pytest.raises(OptionError, match="objective must be one of files, mixtures"):
        train_extractor(data, steps=1, objective="pairs", progress=False)
    out = tmp_path / "w.safetensors"
    args = ["train", str(data), "-o", str(out), "-n", "2", "--crop-size", "64", "--batch-size", "4"]
    assert main([*args, "--widths", "4,8", "--objective", "mixtures"]) == 0
    assert "validation on mixtures" in capsys.readouterr().err
    assert ConvNdExtractor.from_file(out).metadata["metrics"]["objective"] == "mixtures"


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_band_spectra_put_a_tone_in_its_band(dims: int) -> None:
    from ndstyle.training import band_spectra

    n = {1: 256, 2: 32, 3: 16}[dims]
    grid = torch.meshgrid(*[torch.arange(n, dtype=torch.float32)] * dims, indexing="ij")
    tone = torch.cos(2 * torch.pi * 0.25 * grid[-1])[None, None]  # 0.25 cycles/sample on one axis
    spectra = band_spectra(tone, bands=8)
    assert spectra.shape == (1, 8)
    assert int(spectra.argmax()) == int(0.25 / (0.5 * dims**0.5) * 8)


def test_pairwise_correlation_of_distances() -> None:
    from ndstyle.training import pairwise_correlation

    points = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]]), dim=1
    )
    angles = torch.atan2(points[:, 1], points[:, 0])[:, None]
    assert float(pairwise_correlation(points, angles)) > 0.95  # distances grow with the angle
    assert float(pairwise_correlation(points, torch.tensor([[0.0], [5.0], [0.1], [5.1]]))) < 0.0


def test_spectra_objective_aligns_gram_and_spectrum_distances(tmp_path: Path) -> None:
    data = make_textures(tmp_path / "data", 0)
    result = train_extractor(data, steps=100, crop_size=256, seed=0, objective="spectra", **TINY)
    m = result.metrics
    assert m["objective"] == "spectra"
    assert m["val_spectra_corr_trained"] > m["val_spectra_corr_random"]
