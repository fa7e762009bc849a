"""Route-level tests of ``ndstyle serve`` (Starlette's test client) with a stand-in transfer."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed: pip install 'ndstyle[web]'")
pytest.importorskip("httpx2", reason="Starlette's test client needs httpx2")

from _web_util import FakeOptions, FakeTransfer, fake_backend, nifti_bytes, png_bytes, wav_bytes  # noqa: E402
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from ndstyle.web.app import create_app  # noqa: E402
from ndstyle.web.schema import parse_options  # noqa: E402

HEADERS = {"X-Ndstyle": "1"}


@pytest.fixture
def make_client(tmp_path: Path):
    clients: list[TestClient] = []

    def make(transfer: FakeTransfer | None = None, **kwargs: Any) -> tuple[TestClient, FakeTransfer]:
        transfer = transfer or FakeTransfer()
        app = create_app(backend=fake_backend(transfer), root=tmp_path / "root", preview_every=1, **kwargs)
        (tmp_path / "root").mkdir(mode=0o700, exist_ok=True)
        client = TestClient(app, base_url="http://127.0.0.1")
        client.__enter__()
        clients.append(client)
        return client, transfer

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def post_job(
    client: TestClient,
    content=("content.png", None),
    styles=(("style.png", None),),
    options=None,
    extra_files=(),
    headers=HEADERS,
):
    files = [("content", (content[0], content[1] if content[1] is not None else png_bytes(seed=1)))]
    files += [("style", (name, data if data is not None else png_bytes(seed=2))) for name, data in styles]
    files += list(extra_files)
    return client.post("/api/jobs", files=files, data={"options": json.dumps(options or {})}, headers=headers)


def follow_events(client: TestClient, job_id: str) -> list[dict]:
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def wait_done(client: TestClient, job_id: str, timeout: float = 20.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        snap = client.get(f"/api/jobs/{job_id}").json()
        if snap["state"] != "running":
            return snap
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_options_come_from_the_options_dataclass(make_client):
    client, _ = make_client()
    reply = client.get("/api/options").json()
    fields = {f["name"]: f for f in reply["fields"]}
    declared = {f.name: f for f in dataclasses.fields(FakeOptions)}
    assert "checkpoint" not in fields  # a host path: never settable from the page
    assert set(fields) == set(declared) - {"checkpoint"}
    for name, f in fields.items():
        default = declared[name].default
        assert f["default"] == (str(default) if isinstance(default, Path) else default), name
        assert f["help"] == declared[name].metadata.get("help", "")
    assert fields["steps"]["kind"] == "int" and fields["steps"]["main"]
    assert fields["content_weight"]["kind"] == "float"
    assert fields["style_blend"]["kind"] == "floats"
    assert fields["scales"]["kind"] == "text"
    assert fields["verbose_web"]["kind"] == "bool"
    assert fields["preserve_color"] == {**fields["preserve_color"], "kind": "choice", "modalities": ["image"]}
    assert fields["preserve_color"]["choices"] == ["none", "luminance", "histogram"]
    assert fields["mask"]["kind"] == "file" and fields["mask"]["modalities"] == ["volume"]
    assert fields["extractor"]["choices"] == [None, "random", "vgg16"]  # names only, no weights paths
    names = {m["name"] for m in reply["modalities"]}
    assert {"image", "volume", "audio", "signal"} <= names


def test_page_uses_only_local_assets(make_client):
    client, _ = make_client()
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(r.startswith(("/static/", "#")) for r in refs), refs
    for asset in ("/static/app.js", "/static/style.css"):
        body = client.get(asset)
        assert body.status_code == 200
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", body.text), asset
        assert "@import" not in body.text and "url(" not in body.text


def test_image_job_upload_progress_result_download(make_client):
    client, transfer = make_client()
    reply = post_job(client, options={"steps": "3", "content_weight": "1.0", "preserve_color": "luminance"})
    assert reply.status_code == 202, reply.text
    job = reply.json()
    events = follow_events(client, job["id"])
    steps = [e["progress"]["step"] for e in events if e["progress"]]
    assert steps[-1] == 3 and steps == sorted(steps)
    last = events[-1]
    assert last["state"] == "done" and last["result"]
    assert [c["step"] for e in events for c in e["new_costs"]] == [1, 2, 3]
    p = last["progress"]
    assert p["total_steps"] == 3 and p["style"] == pytest.approx(10 / 3) and p["eta"] == 0
    # the options went to transfer typed, defaults left out (content_weight equals its default)
    assert transfer.calls[0]["options"] == {"steps": 3, "preserve_color": "luminance"}
    assert last["checks"] == {"border_frame": True, "in_range": False}  # the judge's, as reported
    assert last["check_values"] == {"border_frame": "0.1 (target <= 0.5)", "in_range": "0.99 (target == 1)"}
    assert last["check_advice"] == "the stand-in's hint"
    assert last["pictures"] == ["content", "style1", "result"]
    for name in last["pictures"]:
        picture = client.get(f"/api/jobs/{job['id']}/picture/{name}.png")
        assert picture.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(picture.content)).size == (20, 16)
    assert client.get(f"/api/jobs/{job['id']}/preview.png").headers["content-type"] == "image/png"
    assert client.get(f"/api/jobs/{job['id']}/field.png").status_code == 200
    download = client.get(f"/api/jobs/{job['id']}/result")
    assert download.status_code == 200
    assert 'filename="content-styled.png"' in download.headers["content-disposition"]
    assert download.content == Path(transfer.calls[0]["output"]).read_bytes()


def test_cancel_stops_the_transfer_and_keeps_the_best_so_far(make_client):
    client, transfer = make_client(FakeTransfer(delay=0.02, default_steps=500))
    job = post_job(client).json()
    end = time.monotonic() + 10
    while not client.get(f"/api/jobs/{job['id']}").json()["progress"]:
        assert time.monotonic() < end
        time.sleep(0.01)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 403  # no page header
    assert client.post(f"/api/jobs/{job['id']}/cancel", headers=HEADERS).json()["cancel_requested"]
    snap = wait_done(client, job["id"])
    assert snap["state"] == "cancelled"
    assert snap["progress"]["step"] < 500
    assert snap["result"] and client.get(f"/api/jobs/{job['id']}/result").status_code == 200


def test_one_job_at_a_time(make_client):
    client, _ = make_client(FakeTransfer(delay=0.02, default_steps=200))
    first = post_job(client).json()
    second = post_job(client)
    assert second.status_code == 409 and second.json()["error"].startswith("busy")
    client.post(f"/api/jobs/{first['id']}/cancel", headers=HEADERS)
    wait_done(client, first["id"])
    third = post_job(client)
    assert third.status_code == 202
    # only the latest job is kept: the first one's files and routes are gone
    assert client.get(f"/api/jobs/{first['id']}/result").status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"content": ("notes.txt", b"hello")}, "content: unsupported file extension '.txt'"),
        ({"content": ("run.sh", b"#!/bin/sh")}, "content: unsupported file extension '.sh'"),
        ({"styles": (("rec.hea", b"x"),)}, "style 1: a WFDB record is two files"),
        ({"styles": ()}, "style: give at least one style file"),
        ({"content": ("empty.png", b"")}, "content: the file is empty"),
        ({"options": {"steps": "many"}}, "option steps: expected an integer, got 'many'"),
        ({"options": {"content_weight": "nan"}}, "option content_weight: expected a finite number"),
        ({"options": {"preserve_color": "sepia"}}, "option preserve_color: expected one of none"),
        ({"options": {"checkpoint": "/tmp/x"}}, "option 'checkpoint' is unknown or cannot be set"),
        ({"options": {"extractor": "/etc/passwd"}}, "option extractor: expected one of default, random"),
        ({"options": {"scales": "../../etc/x"}}, "option scales: '../../etc/x' is not allowed"),
        ({"options": {"nonsense": 1}}, "option 'nonsense' is unknown"),
    ],
)
def test_bad_requests_get_one_line_errors(make_client, kwargs, message):
    client, transfer = make_client()
    reply = post_job(client, **kwargs)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert message in error and "\n" not in error
    assert not transfer.calls


def test_unreadable_file_error_is_shown_as_the_cli_would(make_client):
    client, _ = make_client()
    job = post_job(client, content=("photo.png", b"this is not a png at all")).json()
    snap = wait_done(client, job["id"])
    assert snap["state"] == "error" and not snap["result"]
    assert snap["error"].startswith("InputFileError: input ") and "not a readable file" in snap["error"]
    assert client.get(f"/api/jobs/{job['id']}/result").status_code == 404


def test_errors_raised_by_transfer_reach_the_page(make_client):
    client, transfer = make_client()
    job = post_job(client, options={"seed": 13}).json()  # the stand-in refuses seed 13 like a bad option
    snap = wait_done(client, job["id"])
    assert transfer.calls[0]["options"] == {"seed": 13}
    assert snap["state"] == "error" and snap["error"] == "OptionError: seed: 13 is refused by the stand-in"


def test_upload_limit(make_client, tmp_path):
    client, transfer = make_client(max_upload_mb=0.01)
    big = png_bytes(size=(80, 80), seed=3)
    assert len(big) > 0.01 * 1024 * 1024
    reply = post_job(client, content=("big.png", big))
    assert reply.status_code == 413 and "--max-upload-mb" in reply.json()["error"]
    assert not transfer.calls
    assert list((tmp_path / "root").iterdir()) == []  # nothing stored
    # without a Content-Length (chunked), the body is counted as it arrives
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def chunks():
        yield head
        for _ in range(40):
            yield b"\0" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    reply = client.post(
        "/api/jobs",
        content=chunks(),
        headers={**HEADERS, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert reply.status_code == 413, reply.text
    assert not transfer.calls and list((tmp_path / "root").iterdir()) == []


@pytest.mark.parametrize(
    "name",
    [
        "../../escape.png",
        "/etc/escape.png",
        "..\\..\\escape.png",
        "a/b/../../escape.png",
        "....//escape.png",
        "escape.png\x00.sh",
    ],
)
def test_file_names_are_never_paths(make_client, tmp_path, name):
    client, transfer = make_client()
    reply = post_job(client, content=(name, png_bytes(seed=1)), styles=((name, png_bytes(seed=2)),))
    if reply.status_code == 400:  # a name the parser or the extension check refuses
        assert "\n" not in reply.json()["error"]
        return
    job = wait_done(client, reply.json()["id"])
    folder = tmp_path / "root" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "content.png",
        "preview.png",
        "result.png",
        "style1.png",
    ]
    assert not list(tmp_path.rglob("escape*")) and not Path("/etc/escape.png").exists()
    assert transfer.calls[0]["content"] == folder / "content.png"
    assert job["download_name"] == "escape-styled.png"
    assert "/" not in job["download_name"] and "\\" not in job["download_name"]


def test_routes_never_take_paths(make_client):
    client, _ = make_client()
    job = post_job(client).json()
    wait_done(client, job["id"])
    for url in (
        f"/api/jobs/{job['id']}/picture/..%2F..%2Fetc%2Fpasswd.png",
        f"/api/jobs/{job['id']}/picture/passwd.png",
        f"/api/jobs/{job['id']}/media/..%2Fcontent.png",
        "/api/jobs/..%2F..%2Fetc/result",
        "/api/jobs/0000000000000000/result",
        "/static/../jobs.py",
        "/static/..%2Fjobs.py",
    ):
        reply = client.get(url)
        assert reply.status_code == 404, url
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400  # DNS rebinding guard
    assert post_job(client, headers={}).status_code == 403  # cross-site forms cannot set the header


def test_volume_job_slices_and_mask(make_client):
    client, transfer = make_client()
    mask = ("mask", ("mask.nii", nifti_bytes(seed=5)))
    reply = post_job(
        client,
        content=("brain.nii", nifti_bytes()),
        styles=(("texture.nii", nifti_bytes(seed=4)),),
        options={"steps": 2},
        extra_files=[mask],
    )
    assert reply.status_code == 202, reply.text
    snap = wait_done(client, reply.json()["id"])
    assert snap["state"] == "done", snap
    assert snap["modality"] == "volume" and snap["download_name"] == "brain-styled.nii"
    assert transfer.calls[0]["options"]["mask"].name == "mask.nii"
    assert snap["slices"]["result"] == {
        "shape": [10, 12, 8],
        "planes": ["sagittal", "coronal", "axial"],
        "radiological": True,
    }
    base = f"/api/jobs/{snap['id']}"
    axial = Image.open(io.BytesIO(client.get(f"{base}/slice/result/2/4.png").content))
    assert axial.size == (10, 12)  # x across, y up
    sagittal = Image.open(io.BytesIO(client.get(f"{base}/slice/content/0/99.png").content))  # clamped
    assert sagittal.size == (12, 8)
    assert client.get(f"{base}/slice/result/3/0.png").status_code == 404
    assert client.get(f"{base}/slice/style1/0/0.png").status_code == 404
    assert "style1" in snap["pictures"]


def test_audio_job_offers_players_and_the_field_preview(make_client):
    client, transfer = make_client()
    reply = post_job(client, content=("voice.wav", wav_bytes()), styles=(("drone.wav", wav_bytes(freq=90)),))
    snap = wait_done(client, reply.json()["id"])
    assert snap["state"] == "done" and snap["modality"] == "audio"
    assert snap["media"] == ["content", "result", "style1"] and snap["field_preview"]
    base = f"/api/jobs/{snap['id']}"
    for name in snap["media"]:
        audio = client.get(f"{base}/media/{name}")
        assert audio.status_code == 200 and audio.headers["content-type"] in ("audio/x-wav", "audio/wav")
    assert client.get(f"{base}/media/result").content == Path(transfer.calls[0]["output"]).read_bytes()
    assert client.get(f"{base}/preview.png").headers["content-type"] == "image/png"  # curves, mid-run


def test_private_folder_is_removed_when_the_server_stops(tmp_path):
    app = create_app(backend=fake_backend())
    root = app.state.manager.root
    assert root.is_dir() and (root.stat().st_mode & 0o777) == 0o700
    with TestClient(app, base_url="http://127.0.0.1") as client:
        job = post_job(client).json()
        wait_done(client, job["id"])
        assert any(root.iterdir())
    assert not root.exists()


def test_serve_command_is_registered_and_hints_when_the_extra_is_missing(monkeypatch, capsys):
    import sys

    from ndstyle.cli import main
    from ndstyle.web.cli import is_loopback

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--max-upload-mb" in capsys.readouterr().out
    assert main(["serve", "--port", "99999"]) == 2  # a usage error, as for every command
    assert "--port must be 0-65535, got 99999" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    hint = "ndstyle serve needs the web extra: pip install 'ndstyle[web]' (missing: uvicorn)"
    assert err == f"ndstyle: error: NdstyleError: {hint}"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")


def test_the_form_is_ndstyle_transfer_options():
    """Every TransferOptions field is on the form with its own default, or left out on purpose."""
    import ndstyle
    from ndstyle.extractors import available_extractors
    from ndstyle.modalities import all_modalities
    from ndstyle.web.schema import HOST_ONLY_OPTIONS, form_fields

    fields = {
        f.name: f
        for f in form_fields(ndstyle.TransferOptions, available_extractors(), list(all_modalities()))
    }
    declared = {f.name: f for f in dataclasses.fields(ndstyle.TransferOptions)}
    assert set(fields) == set(declared) - HOST_ONLY_OPTIONS
    for name, field in fields.items():
        assert field.default == declared[name].default, name
        assert field.help == declared[name].metadata["spec"].help, name
    assert fields["mask"].kind == "file"  # uploaded, never a host path
    assert "vgg16" in fields["extractor"].choices and fields["extractor"].kind == "choice"
    assert fields["preserve_color"].modalities == ("image",) and fields["n_fft"].modalities == ("audio",)
    assert fields["steps"].main and fields["size"].main and not fields["lr"].main
    # a submitted form becomes keywords that TransferOptions accepts as they are
    chosen = parse_options(
        list(fields.values()),
        {
            "steps": "5",
            "scales": "0.5,1",
            "style_blend": "1",
            "vol_window": "1,99",
            "preserve_color": "histogram",
        },
    )
    assert chosen == {
        "steps": 5,
        "scales": [0.5, 1.0],
        "style_blend": [1.0],
        "vol_window": [1.0, 99.0],
        "preserve_color": "histogram",
    }
    ndstyle.TransferOptions.from_kwargs(**chosen)


def test_cancel_with_the_real_transfer(tmp_path):
    """The real ndstyle.transfer stops when the callback says so, and writes the best so far."""
    app = create_app(root=tmp_path / "root", preview_every=1)
    (tmp_path / "root").mkdir()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        options = {"size": 24, "steps": 500, "extractor": "random"}
        reply = post_job(client, options=options)
        assert reply.status_code == 202, reply.text
        job_id = reply.json()["id"]
        end = time.monotonic() + 60
        while (
            not (snap := client.get(f"/api/jobs/{job_id}").json())["progress"] and snap["state"] == "running"
        ):
            assert time.monotonic() < end
            time.sleep(0.05)
        client.post(f"/api/jobs/{job_id}/cancel", headers=HEADERS)
        snap = wait_done(client, job_id, timeout=60)
        assert snap["state"] == "cancelled", snap
        assert snap["progress"]["step"] < snap["progress"]["total_steps"]
        result = client.get(f"/api/jobs/{job_id}/result")
        assert result.status_code == 200
        assert Image.open(io.BytesIO(result.content)).size == (24, 19)  # long side = size
