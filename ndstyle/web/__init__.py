"""``ndstyle serve``: a local web page to try style transfer on your own files.

Needs the ``web`` extra (``pip install 'ndstyle[web]'``: Starlette, uvicorn, python-multipart).
Importing this package does not import them; :func:`create_app` does.
"""

from __future__ import annotations

from typing import Any


def create_app(**kwargs: Any) -> Any:
    """The Starlette application (see :func:`ndstyle.web.app.create_app`)."""
    from .app import create_app as _create_app

    return _create_app(**kwargs)


__all__ = ["create_app"]
