"""End-to-end tests of ``ndstyle serve`` in a real headless Chromium (Debian's package, Playwright).

Skipped, with the reason, when Playwright or ``/usr/bin/chromium`` is missing (CI installs both:
``apt-get install -y chromium`` and ``pip install playwright``; never ``playwright install``).

``NDSTYLE_WEB_SCREENSHOTS=docs/img/web`` also saves the screenshots used in docs/web.md (with real
data and longer runs, so the pictures are worth looking at).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'ndstyle[web]'")
pytest.importorskip("uvicorn", reason="the web extra is not installed: pip install 'ndstyle[web]'")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install playwright"
)

CHROMIUM = os.environ.get("NDSTYLE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)", allow_module_level=True)

DATA = Path(__file__).resolve().parents[1] / "ndstyle" / "data"
SHOTS = os.environ.get("NDSTYLE_WEB_SCREENSHOTS")
TIMEOUT_MS = 900_000 if SHOTS else 90_000


def _backend() -> Any:
    if os.environ.get("NDSTYLE_WEB_TEST_BACKEND") == "standin":  # route plumbing only, while developing
        from _web_util import fake_backend

        return fake_backend()
    from ndstyle.web.jobs import default_backend

    return default_backend()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    import uvicorn

    from ndstyle.web.app import create_app

    app = create_app(backend=_backend(), preview_every=2)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < end and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(30)
    assert not app.state.manager.root.exists()  # the private upload folder went with the server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith("http://127.0.0.1:") else None)
    pg.expected_errors = []  # type: ignore[attr-defined]  # substrings a test expects to see
    yield pg
    context.close()
    errors = [e for e in errors if not any(x in e for x in pg.expected_errors)]  # type: ignore[attr-defined]
    assert not errors, errors
    assert not outside, f"the page asked for outside resources: {outside}"


def shot(pg: Any, name: str, full_page: bool = True) -> None:
    """Save a screenshot for docs/web.md when asked (palette PNG, kept small)."""
    if not SHOTS:
        return
    from PIL import Image

    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    pg.screenshot(path=str(path), full_page=full_page)
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        small = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def set_option(pg: Any, name: str, value: str) -> None:
    pg.fill(f"#opt-{name}", value)


def run_and_wait(pg: Any) -> None:
    """Start, then wait until this new job has ended (the page shows the latest job on load)."""
    before = pg.evaluate("() => document.body.dataset.job || ''")
    pg.click("#start")
    pg.wait_for_function(
        "old => (document.body.dataset.job || '') !== old || !document.getElementById('error').hidden",
        arg=before,
        timeout=TIMEOUT_MS,
    )
    pg.wait_for_function(
        "() => document.body.dataset.state !== 'running' || !document.getElementById('error').hidden",
        timeout=TIMEOUT_MS,
    )
    assert pg.is_hidden("#error"), pg.inner_text("#error")
    assert pg.evaluate("() => document.body.dataset.state") == "done"
    assert pg.inner_text("#progress-text").endswith("done"), pg.inner_text("#progress-text")
    assert pg.is_visible("#result")


def loaded_images(pg: Any, selector: str) -> list[int]:
    pg.wait_for_function(
        f"() => [...document.querySelectorAll('{selector}')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=TIMEOUT_MS,
    )
    return pg.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalWidth)")


def test_image_pair_upload_progress_result_download(server: str, page: Any, tmp_path: Path) -> None:
    from PIL import Image

    page.goto(server)
    page.wait_for_selector("#opt-steps")
    assert page.inner_text("#server-state") == "ready"
    page.set_input_files("#content-file", str(DATA / "chelsea.png"))
    page.set_input_files("#style-files", str(DATA / "starry_night.jpg"))
    assert "image" in page.inner_text("#content-name")
    assert page.is_visible("#opt-preserve_color")  # an image option, shown for an image
    set_option(page, "size", "256" if SHOTS else "32")
    set_option(page, "steps", "40" if SHOTS else "3")
    shot(page, "01-form")
    if SHOTS:  # catch the page mid-run
        page.click("#start")
        page.wait_for_selector("#preview-box:not([hidden])", timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => parseFloat(document.getElementById('bar').style.width) > 40", timeout=TIMEOUT_MS
        )
        shot(page, "02-progress")
        page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    else:
        run_and_wait(page)
    assert loaded_images(page, "#pictures img") and page.locator("#pictures figure").count() == 3
    assert "step" in page.inner_text("#progress-text")
    checks = page.inner_text("#checks")  # the image judge's checks (ndstyle.metrics.image)
    assert checks.startswith("Field checks") and "border frame: 0." in checks and "in range" in checks
    assert "(target <= 0.5)" in checks  # each check with its value and target
    shot(page, "03-image-result")
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "chelsea-styled.png"
    with Image.open(path) as result, Image.open(DATA / "chelsea.png") as content:
        assert result.format == "PNG" and result.mode == content.mode


def _volume_file(tmp_path: Path) -> tuple[Path, Path]:
    """Content and style volumes: the MNI152 T1 and white-matter templates (nilearn) for screenshots."""
    import nibabel as nib

    if SHOTS:
        import importlib.util

        spec = importlib.util.find_spec("nilearn")
        assert spec and spec.origin, "screenshots of volumes need nilearn (pip install 'ndstyle[examples]')"
        data = Path(spec.origin).parent / "datasets" / "data"
        t1 = data / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
        return t1, data / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"  # a white-matter map as style
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in (22, 26, 20)], indexing="ij"))
    head = (1.0 - (grid**2).sum(0)).clip(0, None) * 1000 + rng.normal(0, 5, (22, 26, 20))
    texture = 500 + 200 * np.sin(9 * grid.sum(0)) + rng.normal(0, 5, (22, 26, 20))
    paths = tmp_path / "head.nii.gz", tmp_path / "texture.nii.gz"
    for path, values in zip(paths, (head, texture)):
        nib.save(nib.Nifti1Image(values.astype(np.int16), np.diag([1.5, 1.5, 2.0, 1.0])), str(path))
    return paths


def test_volume_upload_and_slice_view(server: str, page: Any, tmp_path: Path) -> None:
    import nibabel as nib

    content, style = _volume_file(tmp_path)
    page.goto(server)
    page.wait_for_selector("#opt-steps")
    page.set_input_files("#content-file", str(content))
    page.set_input_files("#style-files", str(style))
    assert "volume" in page.inner_text("#content-name")
    assert page.is_hidden("#opt-preserve_color") and page.is_visible("#opt-mask")  # no image options here
    set_option(page, "size", "48" if SHOTS else "24")
    set_option(page, "steps", "10" if SHOTS else "2")
    run_and_wait(page)
    planes = page.locator(".slice-plane")
    assert planes.count() == 3
    widths = loaded_images(page, ".slice-plane img")
    assert len(widths) == 6  # content and result for each of the three planes
    slider = page.locator(".slice-plane[data-axis='2'] input[type=range]")
    first = page.get_attribute(".slice-plane[data-axis='2'] img >> nth=1", "src")
    slider.fill("1")  # move through the axial slices
    page.wait_for_function(
        "f => document.querySelectorAll(\".slice-plane[data-axis='2'] img\")[1].getAttribute('src') !== f",
        arg=first,
    )
    assert page.get_attribute(".slice-plane[data-axis='2'] img >> nth=1", "src").endswith("/2/1.png")
    loaded_images(page, ".slice-plane img")
    slider.fill(str(int(slider.get_attribute("max")) // 2))
    loaded_images(page, ".slice-plane img")
    shot(page, "04-volume-slices")
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "out" / download.value.suggested_filename
    download.value.save_as(path)
    result, source = nib.load(str(path)), nib.load(str(content))
    assert result.shape == source.shape and np.allclose(result.affine, source.affine)
    assert result.get_data_dtype() == source.get_data_dtype()


def _sound_files(tmp_path: Path) -> tuple[Path, Path]:
    """Speech and noise clips (Debian alsa-utils' sounds, NDSTYLE_WEB_SOUNDS) for screenshots, else tones."""
    folder = Path(os.environ.get("NDSTYLE_WEB_SOUNDS", "/usr/share/sounds/alsa"))
    if SHOTS and (folder / "Front_Center.wav").is_file():
        return folder / "Front_Center.wav", folder / "Noise.wav"
    import soundfile as sf

    rate = 16000
    t = np.arange(rate // 2) / rate
    content = 0.4 * np.sin(2 * np.pi * (300 + 400 * t) * t)  # a rising tone
    style = 0.3 * np.random.default_rng(0).standard_normal(t.size) * np.sin(2 * np.pi * 3 * t) ** 2
    paths = tmp_path / "tone.wav", tmp_path / "noise.wav"
    for path, values in zip(paths, (content, style)):
        sf.write(str(path), values.astype(np.float32), rate, subtype="PCM_16")
    return paths


def test_audio_players_and_spectrograms(server: str, page: Any, tmp_path: Path) -> None:
    import soundfile as sf

    content, style = _sound_files(tmp_path)
    page.goto(server)
    page.wait_for_selector("#opt-steps")
    page.set_input_files("#content-file", str(content))
    page.set_input_files("#style-files", str(style))
    assert "audio" in page.inner_text("#content-name")
    page.click("#more-options summary")
    assert page.is_visible("#opt-n_fft") and page.is_hidden("#opt-preserve_color")  # audio options only
    set_option(page, "steps", "20" if SHOTS else "2")
    run_and_wait(page)
    assert page.locator("#media audio").count() == 3  # content, result, style
    durations = page.eval_on_selector_all(
        "#media audio",
        """els => Promise.all(els.map(a => new Promise((ok, fail) => {
            a.onloadedmetadata = () => ok(a.duration);
            a.onerror = () => fail(a.src);
            a.preload = 'metadata';
            a.load();
        })))""",
    )
    expected = sf.info(str(content)).duration
    assert durations[0] == pytest.approx(expected, abs=0.01) and durations[1] == pytest.approx(
        expected, abs=0.01
    )
    assert loaded_images(page, "#field")  # waveforms and spectrograms, the audio modality's own preview
    page.click("#more-options summary")  # fold the options again for the picture
    shot(page, "05-audio")
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "out" / download.value.suggested_filename
    download.value.save_as(path)
    got, source = sf.info(str(path)), sf.info(str(content))
    assert (got.samplerate, got.channels, got.frames, got.subtype) == (
        source.samplerate,
        source.channels,
        source.frames,
        source.subtype,
    )


def test_bad_file_shows_the_one_line_error(server: str, page: Any, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.goto(server)
    page.wait_for_selector("#opt-steps")
    page.set_input_files("#content-file", str(notes))
    page.set_input_files("#style-files", str(DATA / "starry_night.jpg"))
    assert "unsupported" in page.inner_text("#content-name")
    page.expected_errors += ["400 http://127.0.0.1", "status of 400 (Bad Request)"]
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error").startswith("InputFileError: content: unsupported file extension '.txt'")
    assert page.is_enabled("#start")  # nothing started; fix the file and try again
