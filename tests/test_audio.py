import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ndstyle.cli import main
from ndstyle.engine import evaluate_costs
from ndstyle.errors import InputFileError
from ndstyle.extractors import build_extractor
from ndstyle.modalities import modality_for_path
from ndstyle.modalities.audio import AudioModality
from ndstyle.options import TransferOptions


def args(**kw: object) -> TransferOptions:
    base: dict[str, object] = {
        "working_rate": None,
        "n_fft": 256,
        "hop": 128,
        "filters": 64,
        "audio_mode": "waveform",
    }
    base.update(kw)
    return TransferOptions(**base)  # type: ignore[arg-type]


def write_tone(
    path: Path, rate: int, seconds: float, channels: int, subtype: str, freq: float = 440
) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    data = np.stack([0.4 * np.sin(2 * math.pi * freq * (c + 1) * t) for c in range(channels)], axis=1)
    sf.write(path, data, rate, subtype=subtype)
    return sf.read(path, dtype="float64", always_2d=True)[0]


@pytest.mark.parametrize(
    ("suffix", "subtype", "channels"),
    [(".wav", "PCM_16", 1), (".wav", "FLOAT", 2), (".flac", "PCM_24", 2), (".ogg", "VORBIS", 1)],
)
def test_round_trip(tmp_path: Path, suffix: str, subtype: str, channels: int) -> None:
    src = tmp_path / f"in{suffix}"
    data = write_tone(src, 8000, 0.25, channels, subtype)
    modality = modality_for_path(src)
    assert modality.name == "audio"
    loaded = modality.load(src, args())
    assert loaded.tensor.shape == (channels, data.shape[0])
    out = tmp_path / f"out{suffix}"
    modality.save(out, loaded.tensor, loaded, args())
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        8000,
        channels,
        data.shape[0],
        subtype,
    )
    back = sf.read(out, dtype="float64", always_2d=True)[0]
    tol = 0.05 if subtype == "VORBIS" else 1e-6
    assert np.abs(back - data).max() <= tol


def test_style_at_other_rate_length_and_channels(tmp_path: Path) -> None:
    write_tone(tmp_path / "c.wav", 8000, 0.5, 2, "PCM_16")
    write_tone(tmp_path / "s.flac", 11025, 0.3, 1, "PCM_16", freq=900)
    m = AudioModality()
    content = m.load(tmp_path / "c.wav", args())
    style = m.load_style(tmp_path / "s.flac", content, args())
    assert style.tensor.shape == (2, round(0.3 * 8000))
    working = m.load(tmp_path / "c.wav", args(working_rate=4000))
    assert working.tensor.shape == (2, 2000)
    out = tmp_path / "o.wav"
    m.save(out, working.tensor, working, args())
    assert sf.info(out).samplerate == 8000 and sf.info(out).frames == 4000


def test_no_clipping_and_gain_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_tone(tmp_path / "c.wav", 8000, 0.1, 1, "PCM_16")
    m = AudioModality()
    content = m.load(tmp_path / "c.wav", args())
    with caplog.at_level("WARNING", logger="ndstyle"):
        m.save(tmp_path / "o.wav", content.tensor * 5, content, args())
    back = sf.read(tmp_path / "o.wav")[0]
    assert np.abs(back).max() < 1.0
    gain = 0.999 / (5 * float(content.tensor.abs().max()))
    assert f"scaled by {gain:.4f}" in caplog.text
    assert "gain" not in content.meta  # the loaded input is never changed


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(InputFileError):
        AudioModality().load(bad, args())


@pytest.mark.parametrize("mode", ["waveform", "griffin-lim"])
def test_cli_stereo_transfer_lowers_style_cost(tmp_path: Path, mode: str) -> None:
    write_tone(tmp_path / "c.wav", 8000, 0.5, 2, "PCM_16")
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "s.flac", rng.uniform(-0.3, 0.3, (2400, 2)), 6000, subtype="PCM_16")
    out, preview = tmp_path / "o.wav", tmp_path / "p.png"
    argv = [
        "run",
        str(tmp_path / "c.wav"),
        str(tmp_path / "s.flac"),
        "-o",
        str(out),
        "--preview",
        str(preview),
    ]
    argv += ["-n", "15", "--n-fft", "256", "--hop", "128", "--filters", "64", "--audio-mode", mode, "-q"]
    assert main(argv) == 0
    assert sf.info(out).channels == 2 and sf.info(out).frames == 4000 and sf.info(out).subtype == "PCM_16"
    assert preview.read_bytes()[:4] == b"\x89PNG"
    m = AudioModality()
    content = m.load(tmp_path / "c.wav", args())
    written = sf.read(out, dtype="float32", always_2d=True)[0].T
    assert np.isfinite(written).all()
    assert np.sqrt(np.mean((written - content.tensor.numpy()) ** 2)) > 0.01  # the style changed it
    if mode == "waveform":
        content = m.load(tmp_path / "c.wav", args())
        style = m.load_style(tmp_path / "s.flac", content, args())
        result = torch.from_numpy(sf.read(out, dtype="float32", always_2d=True)[0].T.copy())
        ex = build_extractor("spectral", spatial_dims=1, in_channels=2, n_fft=256, hop=128, filters=64)
        before = evaluate_costs(ex, content.tensor, style.tensor, content.tensor)["style"]
        after = evaluate_costs(ex, content.tensor, style.tensor, result)["style"]
        assert after <= before / 10
