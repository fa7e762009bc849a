"""The file-level API: ndstyle.load / save / transfer / describe and the one options object."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from test_golden import CASES

import ndstyle
from ndstyle.cli import main
from ndstyle.errors import OptionError, WeightsIntegrityError
from ndstyle.extractors import ConvNdExtractor
from ndstyle.options import TransferOptions, flag_of, option_fields, options_table

ROOT = Path(__file__).parents[1]
QUICK = {"steps": 2, "seed": 0, "progress": False}


@pytest.mark.parametrize("case", sorted(CASES))
def test_transfer_from_files_equals_the_command_line(case: str, tmp_path: Path) -> None:
    inputs, output, extra = CASES[case](tmp_path)
    assert main(["run", *map(str, inputs), "-o", str(output), "-n", "2", "-q", *extra]) == 0
    options = {"size": int(extra[1])} if extra else {}
    api_out = output.with_name("api" + "".join(output.suffixes))
    result = ndstyle.transfer(inputs[0], inputs[1:], api_out, **QUICK, **options)
    assert result.path == api_out and result.modality == case
    assert hashlib.sha256(api_out.read_bytes()).digest() == hashlib.sha256(output.read_bytes()).digest()
    assert result.history and result.options.steps == 2
    assert tuple(result.output.shape) == tuple(result.content.tensor.shape)


@pytest.mark.parametrize("case", sorted(CASES))
def test_load_save_round_trip_keeps_metadata(case: str, tmp_path: Path) -> None:
    inputs, output, extra = CASES[case](tmp_path)
    loaded = ndstyle.load(inputs[0])
    assert loaded.modality == case and loaded.path == inputs[0]
    written = ndstyle.save(output, loaded.tensor, like=loaded)
    again = ndstyle.load(written)
    assert again.tensor.shape == loaded.tensor.shape
    if case == "volume":  # anisotropic: written back through the near-isotropic working grid
        similarity = torch.corrcoef(torch.stack([again.tensor.flatten(), loaded.tensor.flatten()]))[0, 1]
        assert similarity > 0.97
    else:
        assert torch.allclose(again.tensor, loaded.tensor, atol=2e-3)
    facts_in, facts_out = ndstyle.describe(inputs[0]), ndstyle.describe(written)
    for key in ("channels", "shape", "spacing", "unit", "dtype"):
        assert facts_in[key] == facts_out[key], key
    with pytest.raises(ndstyle.NdstyleError, match="exists"):
        ndstyle.save(output, loaded.tensor, like=loaded)


def test_transfer_from_in_memory_objects(tmp_path: Path) -> None:
    photo = Image.open(ROOT / "ndstyle" / "data" / "chelsea.png").convert("RGB").resize((40, 30))
    painting = Image.open(ROOT / "ndstyle" / "data" / "starry_night.jpg").convert("RGB").resize((32, 32))
    result = ndstyle.transfer(photo, painting, tmp_path / "cat.png", size=32, **QUICK)
    assert result.modality == "image" and "VGG" in result.extractor
    with Image.open(tmp_path / "cat.png") as written_image:
        assert written_image.size == (32, 24)

    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 20)] * 3, indexing="ij"))
    head = nib.Nifti1Image((np.sqrt((grid**2).sum(0)) < 0.7).astype(np.int16) * 100, np.diag([2, 2, 2, 1.0]))
    texture = nib.Nifti1Image((50 + 40 * np.sin(9 * grid[0])).astype(np.float32), np.eye(4))
    out = ndstyle.transfer(head, texture, tmp_path / "v.nii.gz", **QUICK)
    written = nib.load(tmp_path / "v.nii.gz")
    assert out.modality == "volume" and written.get_data_dtype() == np.int16
    assert np.allclose(written.affine, head.affine)

    array = ndstyle.transfer(np.random.default_rng(0).random((1, 32, 32)), torch.rand(1, 24, 24), **QUICK)
    assert array.modality == "array" and array.path is None and array.output.shape == (1, 32, 32)


def test_the_same_loaded_objects_are_never_mutated(tmp_path: Path) -> None:
    inputs, output, _ = CASES["volume"](tmp_path)
    mask = tmp_path / "m.nii.gz"
    nib.Nifti1Image(np.ones((24, 24, 24), np.uint8), np.diag([2.0, 2.0, 2.5, 1.0])).to_filename(mask)
    content = ndstyle.load(inputs[0])
    before = dict(content.meta)
    ndstyle.transfer(content, inputs[1], output, mask=mask, **QUICK)
    assert content.meta.keys() == before.keys()


def _write_ecg(path: Path) -> None:
    t = np.arange(2000) / 500
    beat = np.exp(-((((t % 0.8) - 0.4) / 0.015) ** 2))
    path.write_text("# sample_rate=500\nII\n" + "\n".join(f"{v:.5f}" for v in beat) + "\n")


@pytest.mark.parametrize(("trained_on", "used_for"), [("audio", "signal"), ("signal", "audio")])
def test_weights_of_another_modality_are_refused_with_real_modalities(
    trained_on: str, used_for: str, tmp_path: Path
) -> None:
    weights = tmp_path / "w.safetensors"
    ConvNdExtractor.random(1, 1, widths=(4,)).save(weights, extra_metadata={"modality": trained_on})
    if used_for == "signal":
        content = tmp_path / "ecg.csv"
        _write_ecg(content)
    else:
        content = tmp_path / "speech.wav"
        sf.write(content, np.sin(np.arange(4000) / 5.0) * 0.3, 8000)
    pattern = rf"'{trained_on}' data.*'{used_for}' data.*wrong modality"
    with pytest.raises(WeightsIntegrityError, match=pattern):
        ndstyle.transfer(content, content, extractor=weights, **QUICK)
    code = main(
        ["run", str(content), str(content), "-o", str(tmp_path / f"o{content.suffix}"), "-e", str(weights)]
    )
    assert code == 1 and not (tmp_path / f"o{content.suffix}").exists()


def test_every_option_appears_in_run_help_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for f, spec in option_fields():
        assert flag_of(f.name) in help_text, f.name
        if not isinstance(f.default, bool):
            from ndstyle.options import default_text

            assert f"(default: {' '.join(default_text(f, spec).split())})" in help_text, f.name


def test_transfer_keywords_are_the_options_and_are_checked_first(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(OptionError, match="--steps: expected a whole number"):
        ndstyle.transfer(missing, missing, steps=2.5)
    with pytest.raises(OptionError, match="unknown option 'step'.*'steps'"):
        ndstyle.transfer(missing, missing, step=3)
    with pytest.raises(OptionError, match="--style-scale"):
        TransferOptions(style_scale=float("inf"))
    with pytest.raises(OptionError, match="--vol-window"):
        TransferOptions(vol_window=(float("nan"), float("nan")))
    assert {f.name for f in dataclasses.fields(TransferOptions)} == {f.name for f, _ in option_fields()}


def test_fingerprint_changes_with_every_result_option(tmp_path: Path) -> None:
    base = TransferOptions()
    assert base.fingerprint() == TransferOptions().fingerprint()
    assert TransferOptions(steps=7).fingerprint() != base.fingerprint()
    assert TransferOptions(n_fft=2048).fingerprint() != base.fingerprint()
    assert TransferOptions(save_every=5).fingerprint() == base.fingerprint()  # does not change results
    mask = tmp_path / "m.png"
    Image.new("L", (4, 4), 255).save(mask)
    first = TransferOptions(mask=mask).fingerprint()
    Image.new("L", (4, 4), 0).save(mask)
    assert TransferOptions(mask=mask).fingerprint() != first  # files count by their contents


def test_usage_errors_exit_2_and_name_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, output, _ = CASES["image"](tmp_path)
    code = main(["run", *map(str, inputs), "-o", str(output), "--style-scale", "inf"])
    err = capsys.readouterr().err
    assert code == 2 and "--style-scale" in err and err.count("\n") == 1
    assert not output.exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_info_gives_the_same_keys_for_every_modality(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, _, _ = CASES[case](tmp_path)
    assert main(["info", str(inputs[0]), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert {"modality", "channels", "shape", "unit", "spacing", "extent", "dtype"} <= facts.keys()
    assert facts["modality"] == case


def test_help_does_not_import_torch() -> None:
    code = "import sys; from ndstyle.cli import _build_parser; _build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_two_styles_are_said_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, output, extra = CASES["image"](tmp_path)
    assert (
        main(["run", str(inputs[0]), str(inputs[1]), str(inputs[1]), "-o", str(output), "-n", "1", *extra])
        == 0
    )
    assert "2 styles blended" in capsys.readouterr().err


def test_docs_option_table_is_generated_from_the_options() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    assert options_table() in text, (
        "regenerate with: python -c 'import ndstyle.options as o; print(o.options_table())'"
    )


def test_docs_api_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)  # noqa: S102 - our own documentation


def test_weights_list_sees_torch_hubs_cache_like_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ndstyle.extractors.vgg import torchvision_candidates

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub_file = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert hub_file in torchvision_candidates("vgg19")  # where run looks
    assert main(["weights", "list"]) == 0
    assert "vgg19\tabsent" in capsys.readouterr().out
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"stand-in")
    assert main(["weights", "list"]) == 0
    assert f"vgg19\tpresent\t{hub_file}" in capsys.readouterr().out
    assert main(["weights", "path", "vgg19"]) == 0
    assert capsys.readouterr().out.strip() == str(hub_file)
