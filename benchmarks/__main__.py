"""``make bench``: run every benchmark, write ``bench-report.json``, print where each figure stands.

Each ``bench_*.py`` is a standalone script that prints one JSON object on its last line of
standard output: ``{"name": ..., "metrics": {"label": value, ...}, "targets": {"label": ">= 10"},
"setup": {...}}``. A target is a comparison (``>=``, ``<=``, ``>``, ``<``, ``==``) and a number;
the report says for each metric whether it is met. Targets are reported, never asserted.

Usage: ``python -m benchmarks [--quick] [--out FILE] [NAME ...]`` (NAME: store, import, events,
exchange, receive, fusion, feeds, feed_exchange, cot, picture, postgres, move, api, links,
first_reads, reciprocity).
``--quick`` (or ``KUROSHIO_BENCH_QUICK=1``) scales the long phases down.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import operator
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_TARGET = re.compile(r"^\s*(>=|<=|==|>|<)?\s*([-+]?[\d_,]*\.?\d+)\s*$")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


def status(value: object, target: str) -> str:
    """``met``, ``not met``, or ``""`` when there is no target (or no number to judge)."""
    match = _TARGET.match(target or "")
    if match is None or not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    compare = _COMPARE[match.group(1) or "=="]
    return "met" if compare(float(value), float(match.group(2).replace(",", ""))) else "not met"


def _command(*args: str) -> str:
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def environment(quick: bool) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _command("git", "rev-parse", "--short", "HEAD")
    dirty = bool(_command("git", "status", "--porcelain", "--untracked-files=no"))
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "commit": commit + ("+changes" if dirty and commit else ""),
        "quick": quick,
    }


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="scaled-down smoke run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-report.json")
    args = parser.parse_args()
    quick = args.quick or os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
    env = dict(os.environ, KUROSHIO_BENCH_QUICK="1" if quick else "0")
    console = Console(width=None if sys.stdout.isatty() else 140)
    results: list[dict[str, Any]] = []
    failed = False
    for script in sorted(HERE.glob("bench_*.py")):
        if args.names and script.stem.removeprefix("bench_") not in args.names:
            continue
        console.print(f"[bold]running[/] {script.name} …")
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=False, env=env
        )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            console.print(f"[red]{script.name} failed[/]\n{done.stderr[-3000:]}", highlight=False)
            failed = True
            continue
        result = json.loads(lines[-1])
        result["seconds"] = round(time.perf_counter() - began, 1)
        targets = result.get("targets") or {}
        result["status"] = {
            metric: status(value, targets.get(metric, ""))
            for metric, value in result["metrics"].items()
        }
        results.append(result)
    report = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(quick),
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    info = report["environment"]
    table = Table(
        title="kuroshio benchmarks",
        caption=(
            f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, "
            f"SQLite {info['sqlite']}, commit {info['commit'] or 'unknown'}"
            + (", QUICK run (scaled down)" if quick else "")
        ),
    )
    table.add_column("benchmark")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_column("")
    for result in results:
        targets = result.get("targets") or {}
        for metric, value in result["metrics"].items():
            verdict = result["status"][metric]
            mark = {"met": "[green]met[/]", "not met": "[red]not met[/]"}.get(verdict, "")
            table.add_row(
                f"{result['name']} ({result['seconds']:.0f} s)",
                metric,
                _shown(value),
                targets.get(metric, ""),
                mark,
            )
        table.add_section()
    console.print(table)
    for result in results:
        if result.get("setup"):
            console.print(f"[bold]{result['name']}[/] setup: {result['setup']}", highlight=False)
    console.print(f"report: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
