import subprocess
import sys

import ndstyle


def test_version_and_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "ndstyle", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"ndstyle {ndstyle.__version__}"
