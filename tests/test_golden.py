"""``ndstyle run`` gives byte-identical results for one small case per modality.

The hashes in ``tests/data/golden.json`` were written by the code before the file-level API
refactor (issue 14); a deliberate change of results regenerates them with
``NDSTYLE_REGEN_GOLDEN=1 pytest tests/test_golden.py`` and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from ndstyle.cli import main

GOLDEN = Path(__file__).parent / "data" / "golden.json"
BUNDLED = Path(__file__).parents[1] / "ndstyle" / "data"


def _image(tmp: Path) -> tuple[list[Path], Path, list[str]]:
    content = tmp / "content.png"
    Image.open(BUNDLED / "chelsea.png").convert("RGB").resize((40, 32)).save(content)
    style = tmp / "style.jpg"
    Image.open(BUNDLED / "starry_night.jpg").convert("RGB").resize((36, 36)).save(style, quality=95)
    return [content, style], tmp / "out.png", ["--size", "32"]


def _audio(tmp: Path) -> tuple[list[Path], Path, list[str]]:
    t = np.arange(4000) / 8000
    sf.write(tmp / "c.wav", 0.4 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t), 8000, "PCM_16")
    rng = np.random.default_rng(0)
    sf.write(tmp / "s.wav", 0.2 * rng.uniform(-1, 1, 3000), 8000, "PCM_16")
    return [tmp / "c.wav", tmp / "s.wav"], tmp / "out.wav", []


def _signal(tmp: Path) -> tuple[list[Path], Path, list[str]]:
    t = np.arange(1000) / 250
    paths = []
    for name, phase in (("c.csv", 0.0), ("s.csv", 0.3)):
        beat = np.exp(-(((((t + phase) % 0.8) - 0.4) / 0.015) ** 2))
        leads = np.stack([beat, 0.6 * beat + 0.05 * np.sin(2 * np.pi * 0.3 * t)])
        with open(tmp / name, "w") as f:
            f.write("# sample_rate=250\nI,II\n")
            for row in leads.T:
                f.write(f"{row[0]:.6f},{row[1]:.6f}\n")
        paths.append(tmp / name)
    return paths, tmp / "out.csv", []


def _volume(tmp: Path) -> tuple[list[Path], Path, list[str]]:
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 24)] * 3, indexing="ij"))
    ball = (np.sqrt((grid**2).sum(0)) < 0.7).astype(np.int16) * 100 + 10
    nib.Nifti1Image(ball, np.diag([2.0, 2.0, 2.5, 1.0])).to_filename(tmp / "c.nii.gz")
    texture = 50 + 40 * np.sin(9 * grid[0]) * np.cos(7 * grid[1])
    nib.Nifti1Image(texture.astype(np.float32), np.eye(4)).to_filename(tmp / "s.nii.gz")
    return [tmp / "c.nii.gz", tmp / "s.nii.gz"], tmp / "out.nii.gz", []


def _array(tmp: Path) -> tuple[list[Path], Path, list[str]]:
    generator = torch.Generator().manual_seed(0)
    np.save(tmp / "c.npy", torch.rand(1, 32, 32, generator=generator).numpy())
    np.save(tmp / "s.npy", torch.rand(1, 24, 24, generator=generator).numpy())
    return [tmp / "c.npy", tmp / "s.npy"], tmp / "out.npy", []


CASES = {"image": _image, "audio": _audio, "signal": _signal, "volume": _volume, "array": _array}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_output_is_byte_identical(case: str, tmp_path: Path) -> None:
    inputs, output, extra = CASES[case](tmp_path)
    code = main(["run", *map(str, inputs), "-o", str(output), "-n", "3", "--seed", "0", "-q", *extra])
    assert code == 0
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("NDSTYLE_REGEN_GOLDEN"):
        golden[case] = digest
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert golden.get(case) == digest, f"{case}: result bytes changed"
