"""The Starlette application behind ``ndstyle serve``: JSON/SSE routes and the static page.

Routes (all under the server's own origin; nothing is fetched from elsewhere):

- ``GET /``: the page; ``GET /static/*``: its script and style sheet.
- ``GET /api/options``: the form, from :class:`ndstyle.TransferOptions`, and the accepted files.
- ``POST /api/jobs``: multipart upload (``content``, one or more ``style``, optional ``mask``, and
  ``options`` as JSON) that starts a transfer; 409 while one runs, 413 past ``--max-upload-mb``.
- ``GET /api/jobs/{id}``, ``GET /api/jobs/{id}/events`` (Server-Sent Events), ``POST .../cancel``.
- ``GET .../preview.png`` (latest intermediate), ``.../field.png`` (the modality's own preview),
  ``.../picture/{name}.png``, ``.../slice/{name}/{axis}/{index}.png``, ``.../media/{name}`` (audio
  players) and ``.../result`` (the result file as written by :func:`ndstyle.transfer`).

Files are only ever addressed by the job's own names (``content``, ``style2``, ``result``...).
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InputFileError, NdstyleError, OptionError
from .jobs import Backend, BusyError, Job, JobManager, default_backend, one_line
from .schema import Field, form_fields, parse_options
from .uploads import MULTI_FILE_EXTENSIONS, extension_of, remove_folder, store

logger = logging.getLogger(__name__)

STATIC = Path(str(resources.files("ndstyle.web") / "static"))
MAX_STYLES = 8
_SAFE_STEM = re.compile(r"[^A-Za-z0-9_-]+")
#: Content-Security-Policy: the page may only talk to and load from this server.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class TooLarge(Exception):
    """The request body passed the upload limit."""


class SecurityHeaders:
    """Adds CSP, nosniff and no-referrer headers to every response (plain ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _limited(receive: Receive, limit: int) -> Callable[[], Awaitable[Message]]:
    seen = 0

    async def limited_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge
        return message

    return limited_receive


def create_app(
    *,
    backend: Backend | None = None,
    max_upload_mb: float = 512,
    preview_every: int = 5,
    allowed_hosts: list[str] | None = None,
    root: Path | None = None,
) -> Starlette:
    """The web application.

    Args:
        backend: the library calls (default: the real :func:`ndstyle.transfer` and friends).
        max_upload_mb: largest request (all files of one job together), in MB.
        preview_every: an intermediate preview every this many steps.
        allowed_hosts: ``Host`` headers answered (DNS-rebinding guard); default loopback names.
        root: folder for uploads and results (default: a new private temporary folder, removed
            when the application shuts down).

    """
    backend = backend or default_backend()
    limit = int(max_upload_mb * 1024 * 1024)
    manager = JobManager(backend, root=root, preview_every=preview_every)
    modalities = backend.modalities()
    fields: list[Field] = form_fields(backend.options, backend.extractors(), list(modalities))
    known = sorted({e for m in modalities.values() for e in m.extensions} - set(MULTI_FILE_EXTENSIONS))

    def job_or_404(request: Request) -> Job:
        try:
            return manager.get(request.path_params["job_id"])
        except KeyError:
            raise LookupError("no such job (only the latest job is kept)") from None

    def describe(job: Job, full: bool = True) -> dict[str, Any]:
        snap = job.snapshot()
        if not full:
            snap.pop("costs")
        pictures = job.extras.get("pictures") or {}
        slices = job.extras.get("slices") or {}
        snap["pictures"] = list(pictures)
        snap["slices"] = {
            name: {
                "shape": list(view.shape),
                "planes": [view.plane(a) for a in range(3)],
                "radiological": view.anatomical,
            }
            for name, view in slices.items()
        }
        snap["media"] = list(job.extras.get("media") or {}) if snap["result"] else []
        snap["field_preview"] = job.preview_path is not None
        return snap

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def options(request: Request) -> Response:
        return JSONResponse(
            {
                "fields": [f.as_json() for f in fields],
                "modalities": [
                    {
                        "name": name,
                        "extensions": [e for e in m.extensions if e not in MULTI_FILE_EXTENSIONS],
                        "dims": int(getattr(m, "spatial_dims", 0)),
                        "description": str(getattr(m, "description", "")),
                        "style_modalities": list(getattr(m, "style_modalities", ())),
                    }
                    for name, m in modalities.items()
                ],
                "max_upload_mb": max_upload_mb,
                "max_styles": MAX_STYLES,
                "busy": manager.busy(),
                "job": describe(manager.current) if manager.current is not None else None,
            }
        )

    async def start(request: Request) -> Response:
        if request.headers.get("x-ndstyle") != "1":  # a plain cross-site form cannot set it
            return _error("missing the X-Ndstyle header (requests come from the ndstyle page)", 403)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _error(f"upload too large: the limit is {max_upload_mb:g} MB (--max-upload-mb)", 413)
        if manager.busy():
            return _error("busy: a transfer is running; wait for it or cancel it first", 409)
        limited = Request(request.scope, receive=_limited(request.receive, limit))
        folder: Path | None = None
        try:
            async with limited.form(max_files=MAX_STYLES + 4, max_fields=8, max_part_size=256 * 1024) as form:
                content = form.get("content")
                styles = [s for s in form.getlist("style") if isinstance(s, UploadFile)]
                if not isinstance(content, UploadFile):
                    raise InputFileError("content: no file was given")
                if not styles:
                    raise InputFileError("style: give at least one style file")
                if len(styles) > MAX_STYLES:
                    raise InputFileError(f"style: at most {MAX_STYLES} style files, got {len(styles)}")
                raw_options = form.get("options") or "{}"
                try:
                    submitted = json.loads(str(raw_options))
                except ValueError:
                    raise OptionError("options: not valid JSON") from None
                if not isinstance(submitted, dict):
                    raise OptionError("options: expected a JSON object")
                chosen = parse_options(fields, submitted)
                content_ext = extension_of(content.filename, known, "content")
                modality = next(m for m in modalities.values() if content_ext in m.extensions)
                style_exts = [extension_of(s.filename, known, f"style {i + 1}") for i, s in enumerate(styles)]
                file_fields = [f for f in fields if f.kind == "file"]
                uploads = [(f, u) for f in file_fields if isinstance(u := form.get(f.name), UploadFile)]
                uploads = [(f, u) for f, u in uploads if u.filename]
                job_id, folder = manager.new_folder()
                content_path = store(content.file, folder, "content", content_ext, limit=limit)
                style_paths = [
                    store(s.file, folder, f"style{i + 1}", ext, limit=limit)
                    for i, (s, ext) in enumerate(zip(styles, style_exts))
                ]
                for f, upload in uploads:
                    ext = extension_of(upload.filename, known, f.name)
                    chosen[f.name] = store(upload.file, folder, f.name, ext, limit=limit)
        except Exception as error:
            if folder is not None:
                remove_folder(folder)
            if isinstance(error, TooLarge):
                return _error(f"upload too large: the limit is {max_upload_mb:g} MB (--max-upload-mb)", 413)
            if isinstance(error, BusyError):
                return _error(str(error), 409)
            if isinstance(error, NdstyleError):
                return _error(one_line(error), 400)
            return _error(f"bad request: {one_line(error)}", 400)  # e.g. a malformed multipart body
        output_exts = tuple(getattr(modality, "output_extensions", ()) or modality.extensions)
        output = folder / f"result{content_ext if content_ext in output_exts else output_exts[0]}"
        stem = _SAFE_STEM.sub("-", Path((content.filename or "").replace("\\", "/")).name.split(".")[0])
        stem = stem.strip("-")[:60] or "ndstyle"
        job = Job(
            id=job_id,
            folder=folder,
            modality=modality.name,
            content=content_path,
            styles=style_paths,
            options=chosen,
            output=output,
            download_name=f"{stem}-styled{output.name[len('result') :]}",
        )
        if modality.name == "audio":
            job.extras["media"] = {"content": content_path, "result": output}
            job.extras["media"].update({f"style{i + 1}": p for i, p in enumerate(style_paths)})
        try:
            manager.start(job)
        except BusyError as error:
            return _error(str(error), 409)
        return JSONResponse(describe(job), status_code=202)

    async def status(request: Request) -> Response:
        return JSONResponse(describe(job_or_404(request)))

    async def cancel(request: Request) -> Response:
        if request.headers.get("x-ndstyle") != "1":
            return _error("missing the X-Ndstyle header (requests come from the ndstyle page)", 403)
        job = job_or_404(request)
        manager.cancel(job.id)
        return JSONResponse(describe(job))

    async def events(request: Request) -> Response:
        job = job_or_404(request)

        async def stream() -> AsyncIterator[str]:
            version, sent = -1, 0
            while True:
                snap = describe(job)
                if snap["version"] != version:
                    version = snap["version"]
                    costs = snap.pop("costs")
                    snap["new_costs"], sent = costs[sent:], len(costs)
                    yield f"event: job\ndata: {json.dumps(snap)}\n\n"
                if snap["state"] != "running" or await request.is_disconnected():
                    return
                await asyncio.sleep(0.2)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def preview(request: Request) -> Response:
        job = job_or_404(request)
        with job.lock:
            picture = job.preview
        if picture is None:
            return _error("no preview yet", 404)
        return Response(picture, media_type="image/png")

    async def field_preview(request: Request) -> Response:
        job = job_or_404(request)
        if job.preview_path is None:
            return _error("no preview for this job", 404)
        return FileResponse(job.preview_path, media_type="image/png")

    async def picture(request: Request) -> Response:
        job = job_or_404(request)
        pictures = job.extras.get("pictures") or {}
        name = request.path_params["name"]
        if name not in pictures:
            return _error(f"no picture {name!r}", 404)
        return Response(pictures[name], media_type="image/png")

    async def slice_png(request: Request) -> Response:
        job = job_or_404(request)
        views = job.extras.get("slices") or {}
        name = request.path_params["name"]
        axis, index = request.path_params["axis"], request.path_params["index"]
        if name not in views or axis not in (0, 1, 2):
            return _error(f"no slices of {name!r} across axis {axis}", 404)
        return Response(views[name].slice_png(axis, index), media_type="image/png")

    async def media(request: Request) -> Response:
        job = job_or_404(request)
        files = job.extras.get("media") or {}
        path = files.get(request.path_params["name"])
        if path is None or not path.is_file():
            return _error("no such media", 404)
        kind = mimetypes.guess_type(f"x{path.suffix}")[0] or "application/octet-stream"
        return FileResponse(path, media_type=kind)

    async def result(request: Request) -> Response:
        job = job_or_404(request)
        if not job.result_ready:
            return _error("no result yet", 404)
        return FileResponse(job.output, media_type="application/octet-stream", filename=job.download_name)

    async def on_lookup_error(request: Request, exc: Exception) -> Response:
        return _error(str(exc).strip("'\""), 404)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.to_thread(manager.close)

    hosts = allowed_hosts or ["127.0.0.1", "localhost", "[::1]", "::1"]
    job_routes = [
        Route("/api/jobs/{job_id}", status),
        Route("/api/jobs/{job_id}/events", events),
        Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{job_id}/preview.png", preview),
        Route("/api/jobs/{job_id}/field.png", field_preview),
        Route("/api/jobs/{job_id}/picture/{name}.png", picture),
        Route("/api/jobs/{job_id}/slice/{name}/{axis:int}/{index:int}.png", slice_png),
        Route("/api/jobs/{job_id}/media/{name}", media),
        Route("/api/jobs/{job_id}/result", result),
    ]
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/options", options),
            Route("/api/jobs", start, methods=["POST"]),
            *job_routes,
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={LookupError: on_lookup_error},
        lifespan=lifespan,
    )
    app.state.manager = manager
    return app
