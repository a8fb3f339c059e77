"""Running the real ``kuroshio`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def kuroshio_command() -> list[str]:
    found = shutil.which("kuroshio", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "kuroshio"]


def run(
    *args: str | Path,
    stdin: bytes | None = None,
    check: bool = False,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("KUROSHIO_NODE", None)
    result = subprocess.run(
        [*kuroshio_command(), *map(str, args)],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kuroshio {' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result
