"""Where ndstyle keeps its cache (weights)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Return ndstyle's cache folder: ``$NDSTYLE_HOME`` or ``~/.cache/ndstyle``.

    The folder is not created here; writers create it when they first need it.
    """
    env = os.environ.get("NDSTYLE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ndstyle"


def weights_dir() -> Path:
    """Return the folder that holds converted and downloaded weights files."""
    return home() / "weights"
