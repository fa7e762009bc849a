"""What the benchmarks run on: real image pairs, and inputs of a given size for 1, 2 and 3 dims.

Images come from files that install offline: the demo pair bundled with ndstyle (chelsea, CC0, and
*The Starry Night*, public domain) and scikit-image's data folder (CC0 / public domain), installed
by the ``examples`` extra.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch


def skimage_data() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def pair_paths() -> dict[str, tuple[Path, Path]]:
    """``{name: (content, style)}``: three content/style pairs of real pictures."""
    from ndstyle.demo import CONTENT, STYLE

    data = skimage_data()
    return {
        "chelsea-starry": (Path(CONTENT), Path(STYLE)),
        "astronaut-hubble": (data / "astronaut.png", data / "hubble_deep_field.jpg"),
        "coffee-ihc": (data / "coffee.png", data / "ihc.png"),
    }


def load_image(path: Path, size: int) -> torch.Tensor:
    """RGB ``(3, H, W)`` in [0, 1] with long side ``size``, read by ndstyle's image modality."""
    from ndstyle.modalities.image import MODALITY
    from ndstyle.options import TransferOptions

    return MODALITY.load(path, TransferOptions(size=size)).tensor


def load_pair(name: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Content and style of pair ``name``, both with long side ``size``."""
    content, style = pair_paths()[name]
    return load_image(content, size), load_image(style, size)


def square_image(size: int) -> torch.Tensor:
    """A real photo (scikit-image's retina, 1411 px) as a ``(3, size, size)`` image for scaling runs."""
    return load_image(skimage_data() / "retina.jpg", size)


def audio(seconds: float, rate: int = 44100, channels: int = 2, seed: int = 0) -> torch.Tensor:
    """``(channels, seconds * rate)`` stereo test audio: a chord with vibrato plus noise bursts."""
    g = torch.Generator().manual_seed(seed)
    n = int(round(seconds * rate))
    t = torch.arange(n, dtype=torch.float64) / rate
    tone = sum(
        torch.sin(2 * math.pi * f * t + 3 * torch.sin(2 * math.pi * 5 * t)) for f in (220.0, 277.2, 329.6)
    )
    bursts = torch.randn(n, generator=g, dtype=torch.float64) * (torch.sin(2 * math.pi * 2 * t) > 0.9)
    mono = 0.2 * tone / 3 + 0.05 * bursts
    return torch.stack([mono, mono.roll(int(0.01 * rate))])[:channels].float()


def volume(n: int, seed: int = 0) -> torch.Tensor:
    """``(1, n, n, n)``: a smooth random volume in [0, 1] (MRI-like blobs) for scaling runs."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, n, n, n, generator=g)
    smooth = torch.nn.functional.avg_pool3d(noise, 5, 1, 2)
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()))[0]
