import numpy as np
import pytest
import torch
from PIL import Image

from ndstyle.errors import InputFileError
from ndstyle.modalities import modality_for_path
from ndstyle.modalities.image import MODALITY, luminance_transfer, match_color, rgb_to_yiq
from ndstyle.options import TransferOptions


def args(**kw):
    base = {"size": None, "style_scale": 1.0, "original_size": False}
    base.update(kw)
    return TransferOptions(**base)


def gradient(w=40, h=30):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1).astype(
        np.uint8
    )


def test_extension_picks_image():
    for ext in (".png", ".JPG", ".tiff", ".webp", ".bmp"):
        assert modality_for_path(f"a{ext}").name == "image"


def test_rgba_alpha_round_trip_unchanged(tmp_path):
    rgba = np.dstack([gradient(), (np.arange(40)[None].repeat(30, 0) * 6).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    loaded = MODALITY.load(tmp_path / "in.png", args(size=40))
    assert loaded.tensor.shape == (3, 30, 40)
    MODALITY.save(tmp_path / "out.png", loaded.tensor, loaded, args())
    with Image.open(tmp_path / "out.png") as image:
        out = np.asarray(image)
    assert out.shape == (30, 40, 4)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    assert np.abs(out[..., :3].astype(int) - rgba[..., :3]).max() <= 1


def test_alpha_resized_with_original_size(tmp_path):
    rgba = np.dstack([gradient(), np.full((30, 40), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    loaded = MODALITY.load(tmp_path / "in.png", args(size=20))
    assert loaded.tensor.shape == (3, 15, 20)
    MODALITY.save(tmp_path / "small.png", loaded.tensor, loaded, args())
    with Image.open(tmp_path / "small.png") as small:
        assert small.size == (20, 15)
    MODALITY.save(tmp_path / "orig.png", loaded.tensor, loaded, args(original_size=True))
    with Image.open(tmp_path / "orig.png") as orig:
        out = np.asarray(orig)
    assert out.shape == (30, 40, 4) and np.all(out[..., 3] == 200)


def test_exif_orientation_is_honoured(tmp_path):
    image = Image.fromarray(gradient(40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    loaded = MODALITY.load(tmp_path / "rot.jpg", args())
    assert loaded.tensor.shape == (3, 40, 30)  # displayed upright: taller than wide
    assert loaded.meta["size"] == (30, 40)


def test_16bit_grayscale_full_precision_and_written_back(tmp_path):
    values = (np.arange(64 * 48).reshape(48, 64) * 21).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    loaded = MODALITY.load(tmp_path / "g16.png", args())
    assert loaded.meta["bits"] == 16 and loaded.tensor.shape == (3, 48, 64)
    # values differ by 21/65535: more than 8 bits would keep
    assert torch.allclose(loaded.tensor[0], torch.from_numpy(values / 65535.0).float(), atol=1e-6)
    MODALITY.save(tmp_path / "out.png", loaded.tensor, loaded, args())
    with Image.open(tmp_path / "out.png") as back:
        assert back.mode.startswith("I")
        assert np.abs(np.asarray(back).astype(int) - values).max() <= 2


def test_grayscale_written_as_grayscale_and_meta_kept(tmp_path):
    Image.fromarray(gradient()[..., 0]).save(tmp_path / "g.tif", dpi=(300, 300))
    loaded = MODALITY.load(tmp_path / "g.tif", args())
    assert torch.equal(loaded.tensor[0], loaded.tensor[1])
    MODALITY.save(tmp_path / "out.tif", loaded.tensor, loaded, args())
    with Image.open(tmp_path / "out.tif") as back:
        assert back.mode == "L" and tuple(round(v) for v in back.info["dpi"]) == (300, 300)


def test_unreadable_file_one_line_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(InputFileError, match="x.png"):
        MODALITY.load(tmp_path / "x.png", args())


def test_colour_tools_keep_content_chroma():
    g = torch.Generator().manual_seed(0)
    content = 0.3 + 0.2 * torch.rand(3, 16, 16, generator=g) + torch.tensor([0.1, 0.0, -0.1])[:, None, None]
    result = 0.3 + 0.2 * torch.rand(3, 16, 16, generator=g) + torch.tensor([-0.1, 0.0, 0.1])[:, None, None]
    lum = luminance_transfer(result, content)
    assert torch.allclose(rgb_to_yiq(lum)[0], rgb_to_yiq(result)[0], atol=1e-5)
    assert torch.allclose(rgb_to_yiq(lum)[1:], rgb_to_yiq(content)[1:], atol=1e-5)
    matched = match_color(result, content)
    assert torch.allclose(matched.mean((1, 2)), content.mean((1, 2)), atol=0.02)
