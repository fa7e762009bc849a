"""Audio style transfer on real clips that install offline.

Content: a speech clip from Debian's alsa-utils ("Front_Center.wav", 48 kHz):
    apt-get download alsa-utils && dpkg -x alsa-utils_*.deb alsa
Style: pygame's music loop (house_lo.wav, 11,025 Hz, 8-bit):
    pip download pygame --no-deps -d pg && unzip pg/pygame*.whl 'pygame/examples/data/house_lo.wav'

Run:  PYTHONPATH=. python examples/signals_audio.py --speech alsa/usr/share/sounds/alsa/Front_Center.wav \
          --music pygame/examples/data/house_lo.wav --out out/
Without the files it synthesises a chirp (content) and a drum-like loop (style).
Writes out/speech_as_music.wav (48 kHz, PCM_16 like the content), a Griffin-Lim variant and
preview PNGs (docs/img/signals/ with --docs).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import soundfile as sf

from ndstyle.cli import main


def find_music() -> Path | None:
    spec = importlib.util.find_spec("pygame")
    if spec and spec.origin:
        path = Path(spec.origin).parent / "examples" / "data" / "house_lo.wav"
        return path if path.exists() else None
    return None


def synthesise(folder: Path) -> tuple[Path, Path]:
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 300 * t**2)) * np.hanning(t.size)
    sf.write(folder / "chirp.wav", chirp, rate, subtype="PCM_16")
    rng = np.random.default_rng(0)
    loop = np.zeros(2 * rate)
    for start in range(0, loop.size, rate // 4):
        n = min(2000, loop.size - start)
        loop[start : start + n] += rng.standard_normal(n) * np.exp(-np.arange(n) / 300) * 0.3
    sf.write(folder / "loop.wav", loop, rate, subtype="PCM_16")
    return folder / "chirp.wav", folder / "loop.wav"


def run() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speech", type=Path, default=Path("/usr/share/sounds/alsa/Front_Center.wav"))
    parser.add_argument("--music", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("signals-audio-out"))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--docs", action="store_true", help="write previews to docs/img/signals/")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    music = args.music or find_music()
    if args.speech.exists() and music is not None and music.exists():
        content, style = args.speech, music
    else:
        print("speech clip or music loop not found: synthesising a chirp and a loop")
        content, style = synthesise(args.out)
    img = Path("docs/img/signals") if args.docs else args.out
    img.mkdir(parents=True, exist_ok=True)
    common = [str(content), str(style), "-n", str(args.steps), "--working-rate", "16000", "--overwrite"]
    main(
        [
            "run",
            *common,
            "-o",
            str(args.out / "speech_as_music.wav"),
            "--preview",
            str(img / "audio_waveform.png"),
        ]
    )
    main(
        [
            "run",
            *common,
            "--audio-mode",
            "griffin-lim",
            "-o",
            str(args.out / "speech_as_music_griffinlim.wav"),
        ]
        + ["--preview", str(img / "audio_griffinlim.png")]
    )


if __name__ == "__main__":
    run()
