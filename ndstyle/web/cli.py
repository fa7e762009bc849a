"""``ndstyle serve [--port N] [--host 127.0.0.1] [--open]``: run the local web page."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import threading
import webbrowser
from typing import Any

from ..errors import NdstyleError

logger = logging.getLogger(__name__)

#: What ``ndstyle serve`` says when the web extra is not installed.
MISSING_HINT = "ndstyle serve needs the web extra: pip install 'ndstyle[web]' (missing: {name})"


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``subparsers`` (called by :mod:`ndstyle.cli`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help="open a local web page to style your own files",
        description=(
            "Serve a page (on this computer only, unless --host says otherwise) where you drop a "
            "content file and style files, set the main options, watch the progress and download "
            "the result. Uploads live in a private temporary folder removed when the server stops."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: %(default)s; 0: any free one)")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=512,
        metavar="MB",
        help="largest upload per job, all files together (default: %(default)s)",
    )
    parser.add_argument(
        "--preview-every", type=int, default=5, metavar="N", help="intermediate preview every N steps"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no access log")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=cmd_serve)
    return parser


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this computer."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C; the private upload folder is removed on the way out."""
    try:
        import uvicorn

        from .app import create_app
    except ModuleNotFoundError as error:
        raise NdstyleError(MISSING_HINT.format(name=error.name)) from None
    from ..cli import UsageError  # invalid option values exit with status 2, as for every command

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise UsageError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    if args.preview_every < 1:
        raise UsageError(f"--preview-every must be >= 1, got {args.preview_every}")
    hosts = ["127.0.0.1", "localhost", "[::1]", "::1"]
    if not is_loopback(args.host):
        print(
            f"ndstyle: warning: serving on {args.host}: anyone who can reach this address can upload "
            f"files and run transfers here (default 127.0.0.1 keeps it to this computer)",
            file=sys.stderr,
        )
        hosts = ["*"]
    app = create_app(max_upload_mb=args.max_upload_mb, preview_every=args.preview_every, allowed_hosts=hosts)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=not args.quiet,
        lifespan="on",
        timeout_graceful_shutdown=5,  # an open progress stream must not hold Ctrl-C up
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1] if server.servers else args.port
            shown = f"[{args.host}]" if ":" in args.host else args.host
            url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else shown}:{port}/"
            print(f"ndstyle: serving on {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
            if args.open:
                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled after shutting down
        pass
    print("ndstyle: server stopped; uploads and results removed", file=sys.stderr)
    return 0
