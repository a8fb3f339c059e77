"""Run every benchmark script, collect their JSON results, write a report and print a table.

Each ``bench_*.py`` is a standalone script that prints one JSON object on its last line of
standard output: ``{"name": ..., "metrics": {"label": value, ...}, "targets": {...}}``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent


def main() -> int:
    console = Console()
    only = set(sys.argv[1:])
    results: list[dict[str, object]] = []
    failed = False
    for script in sorted(HERE.glob("bench_*.py")):
        if only and script.stem.removeprefix("bench_") not in only:
            continue
        console.print(f"[bold]running[/] {script.name} …")
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            console.print(f"[red]{script.name} failed[/]\n{done.stderr[-2000:]}")
            failed = True
            continue
        results.append(json.loads(lines[-1]))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    report = {"at": dt.datetime.now(dt.UTC).isoformat(), "results": results}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    table = Table(title="kuroshio benchmarks")
    for column in ("benchmark", "metric", "value", "target"):
        table.add_column(column)
    for result in results:
        targets = result.get("targets", {})
        assert isinstance(targets, dict)
        metrics = result.get("metrics", {})
        assert isinstance(metrics, dict)
        for metric, value in metrics.items():
            shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
            table.add_row(str(result.get("name")), metric, shown, str(targets.get(metric, "")))
    console.print(table)
    console.print(f"report: {out_dir / 'report.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
