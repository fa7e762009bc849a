"""A stand-in for ndstyle.transfer in batch tests of faults (kills, slow items): no torch work."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ndstyle.errors import InputFileError
from ndstyle.io.atomic import atomic_output
from ndstyle.metrics import CHECKS_LOGGER


def transfer(
    content: Path, styles: list[Path], output: Path, *, overwrite: bool = False, **options: Any
) -> Any:
    name = Path(content).name
    if "kill" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    data = Path(content).read_bytes()
    if data.startswith(b"CORRUPT"):
        raise InputFileError(f"input {str(content)!r} is not a readable file\nsecond line")
    with atomic_output(output, overwrite=overwrite, inputs=[content, *styles]) as tmp:
        if "slow" in name:
            time.sleep(float(options.get("lr") or 30))
        tmp.write_bytes(data + b"".join(Path(s).read_bytes() for s in styles))
    step = SimpleNamespace(step=1, content=1.0, style=2.0, tv=0.0, total=3.0)
    report = None
    if options.get("report"):  # a judge's verdict: "framed" inputs fail the border check
        framed = "framed" in name
        if framed:  # what ndstyle.transfer logs for a flagged result
            logging.getLogger(CHECKS_LOGGER).warning("%s: flagged by the image checks", output)
        report = {
            "passes": {"border_frame": not framed, "in_range": True},
            "targets": {"border_frame": {"value": 0.97 if framed else 0.1, "target": "<= 0.5"}},
            "advice": "a framed input",
        }
    return SimpleNamespace(history=[step], best_cost=3.0, pid=os.getpid(), report=report)
