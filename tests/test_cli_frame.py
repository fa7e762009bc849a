"""The command-line frame: run on .npy arrays for every dims, errors as one line, info, demo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ndstyle.cli import main

from conftest import SPATIAL_DIMS, make_pair


def write_pair(tmp_path, spatial_dims: int):
    content, style = make_pair(spatial_dims)
    np.save(tmp_path / "content.npy", content.numpy())
    np.save(tmp_path / "style.npy", style.numpy().astype(np.float64))
    return tmp_path / "content.npy", tmp_path / "style.npy"


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_run_on_arrays_of_every_dims(tmp_path, spatial_dims: int, capsys) -> None:
    content, style = write_pair(tmp_path, spatial_dims)
    out = tmp_path / "out.npy"
    assert (
        main(
            [
                "run",
                str(content),
                str(style),
                "-o",
                str(out),
                "-n",
                "3",
                "--scales",
                "1",
                "-q",
                "--preview",
                str(tmp_path / "p.png"),
            ]
        )
        == 0
    )
    result = np.load(out)
    assert result.shape == np.load(content).shape and result.dtype == np.float32
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == str(out)


def test_existing_output_is_not_overwritten(tmp_path, capsys) -> None:
    content, style = write_pair(tmp_path, 1)
    out = tmp_path / "out.npy"
    out.write_bytes(b"keep me")
    assert main(["run", str(content), str(style), "-o", str(out), "-n", "1", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    assert main(["run", str(content), str(style), "-o", str(out), "-n", "1", "-q", "--overwrite"]) == 0
    assert np.load(out).shape == np.load(content).shape


@pytest.mark.parametrize(
    "argv_tail,message,code",
    [
        (["--content-weight", "-1"], "--content-weight: expected a finite number >= 0", 2),
        (["--extractor", "randm"], "Did you mean 'random'", 1),
        (["--style-layers", "relu1_9"], "relu1_9", 1),
    ],
)
def test_bad_options_give_one_line_and_no_output(tmp_path, capsys, argv_tail, message, code) -> None:
    content, style = write_pair(tmp_path, 1)
    out = tmp_path / "out.npy"
    assert main(["run", str(content), str(style), "-o", str(out), "-q", *argv_tail]) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("ndstyle: error:") and message in err and "\n" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["content.npy", "style.npy"]


def test_unsupported_extension_and_missing_file(tmp_path, capsys) -> None:
    bad = tmp_path / "x.xyz"
    bad.write_text("hello")
    assert main(["run", str(bad), str(bad), "-o", str(tmp_path / "o.npy")]) == 1
    assert "unsupported file extension '.xyz'" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "nope.npy"), str(bad), "-o", str(tmp_path / "o.npy")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_info_describes_arrays_and_weights(tmp_path, capsys) -> None:
    from ndstyle import ConvNdExtractor

    content, _ = write_pair(tmp_path, 3)
    assert main(["info", str(content)]) == 0
    assert "modality: array" in capsys.readouterr().out
    ConvNdExtractor.random(1, 2, widths=(4,)).save(tmp_path / "w.safetensors")
    assert main(["info", str(tmp_path / "w.safetensors")]) == 0
    text = capsys.readouterr().out
    assert "architecture: convnd" in text and "spatial_dims: 1" in text


def test_console_help_shows_library_defaults() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ndstyle", "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--content-weight" in out and "(default: 1.0)" in out and "--tv-weight" in out


def test_ctrl_c_while_starting_up_is_one_line(capsys, monkeypatch) -> None:
    """Ctrl-C while the parser is built or torch is imported: no traceback, exit 130."""
    import ndstyle.cli as cli

    def interrupted(argv=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_build_parser", interrupted)
    assert cli.main(["run", "--help"]) == 130
    assert capsys.readouterr().err == "ndstyle: interrupted\n"
