"""``ndstyle batch``: planning, summary and resume, the local pool's faults, Ray, same results."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ndstyle.batching import SUMMARY_NAME, batch, plan
from ndstyle.batching.local import LocalPool
from ndstyle.batching.resources import choose
from ndstyle.batching.summary import read_summary
from ndstyle.errors import InputFileError, OptionError
from ndstyle.io.atomic import leftover_temporaries

HERE = Path(__file__).parent
STANDIN = "_batch_standin:transfer"  # tests/_batch_standin.py: no torch work, can kill its worker


def lines(outdir: Path) -> list[dict]:
    return [json.loads(x) for x in (outdir / SUMMARY_NAME).read_text().splitlines()]


def by_name(outdir: Path) -> dict[str, dict]:
    return {Path(r["content"]).name: r for r in lines(outdir)}


def no_temporaries(folder: Path) -> bool:
    return all(not leftover_temporaries(d) for d in [folder, *[p for p in folder.rglob("*") if p.is_dir()]])


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """in/a.png, in/sub/b.png, in/sub/deep/c.wav, in/notes.txt (ignored), a style file."""
    src = tmp_path / "in"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "a.png").write_bytes(b"A")
    (src / "sub" / "b.png").write_bytes(b"B")
    (src / "sub" / "deep" / "c.wav").write_bytes(b"C")
    (src / "notes.txt").write_text("not an input")
    style = tmp_path / "style.jpg"
    style.write_bytes(b"S")
    return src, style


# --- planning ------------------------------------------------------------------------------------


def test_plan_mirrors_the_tree_and_skips_other_files(tree: tuple[Path, Path], tmp_path: Path) -> None:
    src, style = tree
    out = src / "results"  # inside the input: never taken as input itself
    out.mkdir()
    (out / "old.png").write_bytes(b"old")
    items = plan(out, inputs=[src], styles=[style], options={"steps": 3})
    assert [(i.content.relative_to(src), i.output.relative_to(out)) for i in items] == [
        (Path("a.png"), Path("a.png")),
        (Path("sub/b.png"), Path("sub/b.png")),
        (Path("sub/deep/c.wav"), Path("sub/deep/c.wav")),
    ]
    assert all(i.styles == (style,) and i.options == {"steps": 3} for i in items)
    only_png = plan(out, inputs=[src], styles=[style], extensions=["png"])
    assert [i.content.name for i in only_png] == ["a.png", "b.png"]


def test_plan_refuses_clashes_and_missing_parts(tree: tuple[Path, Path], tmp_path: Path) -> None:
    src, style = tree
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.png").write_bytes(b"A2")
    with pytest.raises(OptionError, match="would both be written"):
        plan(tmp_path / "out", inputs=[src / "a.png", other / "a.png"], styles=[style])
    with pytest.raises(OptionError, match="--style"):
        plan(tmp_path / "out", inputs=[src])
    with pytest.raises(InputFileError, match="does not exist"):
        plan(tmp_path / "out", inputs=[tmp_path / "nope"], styles=[style])
    # two folders: each tree under its own name
    items = plan(tmp_path / "out", inputs=[src, other], styles=[style])
    assert {str(i.output.relative_to(tmp_path / "out")) for i in items} >= {"in/a.png", "other/a.png"}


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_manifest_rows_with_overrides(tree: tuple[Path, Path], tmp_path: Path, kind: str) -> None:
    src, style = tree
    (tmp_path / "style2.jpg").write_bytes(b"T")
    manifest = tmp_path / f"m.{kind}"
    if kind == "csv":
        manifest.write_text(
            "content,style,output,steps,style-weight\n"
            "in/a.png,style.jpg;style2.jpg,x/a-out.png,7,\n"
            "in/sub/b.png,style.jpg,,,2.5\n"
        )
    else:
        manifest.write_text(
            json.dumps(
                {
                    "content": "in/a.png",
                    "style": ["style.jpg", "style2.jpg"],
                    "output": "x/a-out.png",
                    "steps": 7,
                }
            )
            + "\n"
            + json.dumps({"content": "in/sub/b.png", "style": "style.jpg", "style_weight": 2.5})
            + "\n"
        )
    from ndstyle.batching.options import option_converter

    out = tmp_path / "out"
    items = plan(out, manifest=manifest, options={"steps": 2, "seed": 1}, convert_option=option_converter())
    assert items[0].styles == (tmp_path / "style.jpg", tmp_path / "style2.jpg")
    assert items[0].output == out / "x" / "a-out.png"
    assert items[0].options == {"steps": 7, "seed": 1}  # the row wins, the rest from the command line
    assert items[1].output == out / "b.png"
    assert items[1].options == {"steps": 2, "seed": 1, "style_weight": 2.5}
    bad = tmp_path / "bad.csv"
    bad.write_text("content,style,stpes\nin/a.png,style.jpg,3\n")
    with pytest.raises(OptionError, match="'stpes' is not an option.*'steps'"):
        plan(out, manifest=bad, convert_option=option_converter())


def test_a_bad_manifest_row_fails_only_its_item(tree: tuple[Path, Path], tmp_path: Path) -> None:
    src, style = tree
    manifest = tmp_path / "m.csv"
    manifest.write_text("content,style,steps\nin/a.png,style.jpg,abc\nin/sub/b.png,style.jpg,-3\n")
    result = batch(manifest=manifest, output_dir=tmp_path / "out", transfer=STANDIN, progress=False)
    rows = by_name(tmp_path / "out")
    assert result.failed == 2 and not (tmp_path / "out" / "a.png").exists()
    assert rows["a.png"]["error"].startswith(
        "OptionError: manifest column 'steps': invalid literal for int()"
    )
    assert rows["b.png"]["error"].startswith("OptionError: ") and "steps" in rows["b.png"]["error"]
    assert "\n" not in rows["b.png"]["error"]


def test_workers_threads_and_memory() -> None:
    assert choose(10, cores=4, memory=10**12) == choose(10, 4, 1, cores=4, memory=10**12)
    plan_ = choose(10, workers=2, cores=4, memory=10**12)
    assert (plan_.workers, plan_.threads, plan_.note) == (2, 2, None)
    assert choose(1, workers=4, cores=4, memory=10**12).workers == 1  # never more workers than items
    over = choose(10, workers=4, threads=2, cores=4, memory=10**12)
    assert (over.workers, over.threads) == (2, 2) and "exceed the 4 core(s)" in (over.note or "")
    tight = choose(10, workers=4, cores=4, item_bytes=3 * 1024**3, memory=8 * 1024**3)
    assert tight.workers == 2 and tight.threads == 2 and "each item needs about" in (tight.note or "")
    with pytest.raises(OptionError, match="--workers"):
        choose(3, workers=0)


# --- the local pool with a stand-in transfer: faults, resume, Ctrl-C ------------------------------


@pytest.mark.slow
def test_local_pool_faults_and_resume(tree: tuple[Path, Path], tmp_path: Path) -> None:
    src, style = tree
    (src / "bad.png").write_bytes(b"CORRUPT")
    (src / "kill.png").write_bytes(b"K")
    out = tmp_path / "out"
    result = batch(src, style, out, workers=2, threads=1, transfer=STANDIN, progress=False, steps=3)
    rows = by_name(out)
    assert result.failed == 2 and result.count("done") == 3 and len(rows) == 5
    assert rows["bad.png"]["status"] == "failed" and "\n" not in rows["bad.png"]["error"]
    assert (
        rows["bad.png"]["error"].startswith("InputFileError: input ")
        and "second line" not in rows["bad.png"]["error"]
    )
    assert rows["kill.png"]["status"] == "failed" and "killed by SIGKILL" in rows["kill.png"]["error"]
    assert (out / "sub" / "deep" / "c.wav").read_bytes() == b"CS"
    assert rows["a.png"]["costs"] == {
        "content": 1.0,
        "style": 2.0,
        "tv": 0.0,
        "total": 3.0,
        "best": 3.0,
        "steps": 1,
    }
    assert rows["a.png"]["seconds"] >= 0 and len(rows["a.png"]["fingerprint"]) >= 16
    assert not (out / "kill.png").exists() and no_temporaries(out)
    assert "5 item(s): 3 done, 2 failed, 0 skipped" in result.line()

    mtime = (out / "a.png").stat().st_mtime_ns
    again = batch(src, style, out, workers=2, threads=1, transfer=STANDIN, progress=False, steps=3)
    assert again.count("skipped") == 3 and again.failed == 2  # failed items run again (and fail again)
    assert (out / "a.png").stat().st_mtime_ns == mtime
    assert {r["status"] for r in lines(out)} == {"skipped", "failed"} and len(lines(out)) == 5

    (src / "a.png").write_bytes(b"A-edited")  # a changed input is not skipped, and not overwritten unasked
    changed = by_name(out) and batch(src, style, out, workers=1, transfer=STANDIN, progress=False, steps=3)
    assert by_name(out)["a.png"]["status"] == "failed" and "--redo" in by_name(out)["a.png"]["error"]
    assert changed.count("skipped") == 2
    redo = batch(src, style, out, workers=1, transfer=STANDIN, progress=False, steps=3, redo=True)
    assert redo.count("done") == 3 and (out / "a.png").read_bytes() == b"A-editedS"


def test_results_that_fail_their_fields_checks_are_flagged(
    tree: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With --report each summary line lists the field checks its result failed, the log says by
    how much, and the closing line counts the flagged items, so an unattended batch says which
    results to look at."""
    src, style = tree
    (src / "framed.png").write_bytes(b"F")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        result = batch(src, style, out, workers=1, transfer=STANDIN, progress=False, steps=3, report=True)
    rows = by_name(out)
    assert rows["framed.png"]["flagged"] == ["border_frame"] and rows["a.png"]["flagged"] == []
    flagged_lines = [r.getMessage() for r in caplog.records if "flagged" in r.getMessage()]
    assert flagged_lines == [
        f"{out / 'framed.png'}: result flagged by its field's checks: border_frame 0.97 (target <= 0.5); "
        "likely cause: a framed input"
    ]
    assert result.flagged == 1
    assert "4 item(s): 4 done (1 flagged by their field's checks), 0 failed" in result.line()
    plain = batch(src, style, tmp_path / "plain", workers=1, transfer=STANDIN, progress=False, steps=3)
    assert "flagged" not in by_name(tmp_path / "plain")["framed.png"] and plain.flagged == 0
    assert "flagged" not in plain.line()


def test_a_dead_worker_fails_only_its_item(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("1.png", "2-kill.png", "3.png", "4-kill.png", "5.png"):
        (folder / name).write_bytes(name.encode())
    style = tmp_path / "s.png"
    style.write_bytes(b"S")
    seen: list[dict] = []
    LocalPool(1, 1, STANDIN).run(
        [i.task() for i in plan(tmp_path / "o", inputs=[folder], styles=[style])], seen.append
    )
    assert [r["status"] for r in sorted(seen, key=lambda r: r["index"])] == [
        "done",
        "failed",
        "done",
        "failed",
        "done",
    ]
    assert len({r["worker"] for r in seen if r["status"] == "done"}) == 3  # a fresh worker after each death


@pytest.mark.slow
def test_ctrl_c_keeps_finished_outputs_and_no_partial_file(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "1-fast.png").write_bytes(b"1")
    (folder / "2-slow.png").write_bytes(b"2")
    (folder / "3-slow.png").write_bytes(b"3")
    style = tmp_path / "s.png"
    style.write_bytes(b"S")
    out = tmp_path / "out"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from ndstyle.batching import batch; "
        f"batch(sys.argv[2], sys.argv[3], sys.argv[4], workers=2, threads=1, transfer={STANDIN!r}, "
        "progress=False, lr=60.0)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(HERE), str(folder), str(style), str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out / "1-fast.png").exists() or not list(out.glob(".2-slow.png.*")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)  # a bound on waiting (20 s per worker to stop), not a timing test
    assert proc.returncode != 0 and "BatchInterrupted" in err and "run the same command again" in err
    assert (out / "1-fast.png").read_bytes() == b"1S"
    assert sorted(p.name for p in out.iterdir()) == ["1-fast.png", SUMMARY_NAME]  # no partial file
    assert [r["status"] for r in lines(out)] == ["done"]
    assert "1-fast" in next(iter(read_summary(out / SUMMARY_NAME)))


# --- real transfers: two modalities, a corrupt file, same bytes as `ndstyle run` -------------------


def _real_inputs(root: Path) -> dict[str, Path]:
    """Small real inputs: skimage photo crops, a 12-lead ECG (pydicom's) cut to 2 leads x 2 s."""
    pytest.importorskip("numpy")
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    paths = {
        "cat": root / "in" / "photos" / "cat.png",
        "coffee": root / "in" / "photos" / "sub" / "coffee.png",
        "broken": root / "in" / "photos" / "broken.png",
        "ecg": root / "in" / "ecg" / "rec.csv",
        "painting": root / "styles" / "starry.png",
        "ecg_style": root / "styles" / "ecg.csv",
    }
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.chelsea()[40:104:2, 120:184:2]).save(paths["cat"])
    Image.fromarray(data.coffee()[100:164:2, 200:264:2]).save(paths["coffee"])
    paths["broken"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    Image.open(Path(__import__("ndstyle").__file__).parent / "data" / "starry_night.jpg").convert(
        "RGB"
    ).resize((40, 32)).save(paths["painting"])
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ecg = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm")).waveform_array(0)[:, :2].astype(float)
    for key, start in (("ecg", 0), ("ecg_style", 5000)):
        rows = ecg[start : start + 2000 : 4]  # 2 s at 250 Hz
        text = "# sample_rate=250\nI,II\n" + "".join(f"{a:g},{b:g}\n" for a, b in rows)
        paths[key].write_text(text)
    return paths


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One weights cache for the real-transfer tests (the offline VGG is converted once)."""
    return tmp_path_factory.mktemp("batch_home")


@pytest.fixture
def real(shared_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    monkeypatch.setenv("NDSTYLE_HOME", str(shared_home))
    return _real_inputs(tmp_path)


def test_real_items_of_two_modalities_match_single_runs(tmp_path: Path, real: dict[str, Path]) -> None:
    import torch

    from ndstyle.cli import main

    p = real
    manifest = tmp_path / "m.jsonl"
    rows = [{"content": str(p[k]), "style": str(p["painting"])} for k in ("cat", "coffee", "broken")]
    rows.append({"content": str(p["ecg"]), "style": str(p["ecg_style"]), "steps": 3})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    common = ["-n", "2", "-s", "32", "--seed", "3", "-q"]
    # one worker: coffee (the second image) runs with the VGG cached by cat, and must still match
    argv = ["batch", "--manifest", str(manifest), "-o", str(out), "--workers", "1", "--threads", "1"]
    assert main([*argv, *common]) == 1
    got = by_name(out)
    assert {k: r["status"] for k, r in got.items()} == {
        "cat.png": "done", "coffee.png": "done", "broken.png": "failed", "rec.csv": "done"
    }  # fmt: skip
    assert (
        got["broken.png"]["error"].startswith("InputFileError:")
        and "broken.png" in got["broken.png"]["error"]
    )
    assert got["rec.csv"]["costs"]["steps"] >= 3 and got["cat.png"]["costs"]["total"] > 0

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the batch ran 1 thread per item
    try:
        cases = (("cat", "painting", []), ("coffee", "painting", []), ("ecg", "ecg_style", ["-n", "3"]))
        for key, style, extra in cases:
            single = tmp_path / f"single{p[key].suffix}"
            assert main(["run", str(p[key]), str(p[style]), "-o", str(single), *common, *extra]) == 0
            assert single.read_bytes() == (out / p[key].name).read_bytes()
            single.unlink()
    finally:
        torch.set_num_threads(threads)

    assert main(["batch", "--manifest", str(manifest), "-o", str(out), "--workers", "1", *common]) == 1
    assert sorted(r["status"] for r in lines(out)) == ["failed", "skipped", "skipped", "skipped"]


def test_a_worker_leaves_the_flagged_line_to_the_runner(
    tree: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """transfer's own "flagged" line is silenced inside a worker (the runner logs the item once, with
    values); the logger is enabled again afterwards, so a later transfer in the process logs it."""
    import torch

    from ndstyle.batching.worker import run_item
    from ndstyle.metrics import CHECKS_LOGGER

    src, style = tree
    (src / "framed.png").write_bytes(b"F")
    task = {"index": 0, "content": str(src / "framed.png"), "styles": [str(style)],
            "output": str(tmp_path / "framed.png"), "options": {}, "report": True}  # fmt: skip
    threads = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING):
            out = run_item(task, threads=threads, transfer=STANDIN)
    finally:
        torch.set_num_threads(threads)
    assert out["flagged"] == ["border_frame"]
    assert out["checks_failed"][0] == "border_frame 0.97 (target <= 0.5)"
    assert not [r for r in caplog.records if r.name == CHECKS_LOGGER]
    assert not logging.getLogger(CHECKS_LOGGER).disabled


def test_weights_load_once_per_worker(real: dict[str, Path], tmp_path: Path) -> None:
    """run_item is what a worker runs: the second image reuses the first one's VGG."""
    import torch

    from ndstyle.batching.worker import run_item
    from ndstyle.extractors import cache_extractors, extractor_cache_info

    tasks = [
        {"index": i, "content": str(real[k]), "styles": [str(real["painting"])],
         "output": str(tmp_path / f"{k}.png"), "options": {"steps": 1, "size": 32}}
        for i, k in enumerate(("cat", "coffee"))
    ]  # fmt: skip
    threads = torch.get_num_threads()  # run_item sets a worker's thread count: restore this process's
    try:
        results = [run_item(task, threads=1) for task in tasks]
        assert [r["status"] for r in results] == ["done", "done"]
        assert extractor_cache_info() == {"built": 1, "reused": 1, "size": 1}
    finally:
        cache_extractors(0)
        torch.set_num_threads(threads)


def test_memory_estimate_is_linear_in_the_positions(real: dict[str, Path], tmp_path: Path) -> None:
    from ndstyle.batching.options import estimate_item_bytes

    def estimate(size: int) -> int | None:
        items = plan(tmp_path / "o", inputs=[real["cat"]], styles=[real["painting"]], options={"size": size})
        return estimate_item_bytes(items)

    a, b, c = estimate(32), estimate(64), estimate(128)
    assert a is not None and b is not None and c is not None
    # weights are a constant; activations and optimiser state grow with the positions (x4 per step)
    assert 3.5 < (c - b) / (b - a) < 4.5
    broken = plan(tmp_path / "o", inputs=[real["broken"]], styles=[real["painting"]])
    assert estimate_item_bytes(broken) is None  # left to fail as its item


# --- Ray: a real local instance shared by the tests --------------------------------------------------


@pytest.fixture(scope="module")
def ray_instance() -> object:
    """One local Ray (2 CPUs) for every Ray test here, shut down after this module (not idling on)."""
    ray = pytest.importorskip("ray")
    env = {"PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend_same_outputs_and_faults(
    ray_instance: object, tmp_path: Path, real: dict[str, Path]
) -> None:
    p = real
    photos = p["cat"].parent
    common = dict(steps=2, size=32, seed=3, progress=False, threads=1)
    local = batch(photos, p["painting"], tmp_path / "local", workers=2, **common)
    on_ray = batch(photos, p["painting"], tmp_path / "ray", ray=True, **common)
    assert (local.failed, on_ray.failed, on_ray.count("done")) == (1, 1, 2)
    assert "ray: 1 CPU(s)" in on_ray.line()
    assert (
        by_name(tmp_path / "ray")["broken.png"]["error"] == by_name(tmp_path / "local")["broken.png"]["error"]
    )
    for rel in ("cat.png", "sub/coffee.png"):
        assert (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()
    again = batch(photos, p["painting"], tmp_path / "ray", ray=True, **common)
    assert again.count("skipped") == 2


def test_ray_worker_death_and_missing_gpu(ray_instance: object, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("1.png", "2-kill.png", "3.png"):
        (folder / name).write_bytes(name.encode())
    style = tmp_path / "s.png"
    style.write_bytes(b"S")
    result = batch(folder, style, tmp_path / "out", ray=True, transfer=STANDIN, progress=False)
    rows = by_name(tmp_path / "out")
    assert [rows[n]["status"] for n in ("1.png", "2-kill.png", "3.png")] == ["done", "failed", "done"]
    assert rows["2-kill.png"]["error"].startswith("WorkerDied:") and result.failed == 1
    with pytest.raises(OptionError, match="--gpus-per-item 1: no node of the Ray cluster has 1 GPU"):
        batch(folder, style, tmp_path / "gpu", ray=True, gpus_per_item=1, transfer=STANDIN, progress=False)


def test_ray_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    (tmp_path / "a.png").write_bytes(b"A")
    with pytest.raises(OptionError, match=r"pip install 'ndstyle\[ray\]'"):
        batch(tmp_path / "a.png", tmp_path / "a.png", tmp_path / "out", ray=True, progress=False)
