"""The API starts without torch: a request that needs a model goes to a worker."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_app_does_not_import_torch() -> None:
    code = "import sys, server.app, server.routers; print('torch' in sys.modules, 'server.app' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
