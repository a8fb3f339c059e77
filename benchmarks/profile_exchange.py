"""Profile the exchange hot path: both ``kuroshio serve`` processes under py-spy while a backlog
drains TWN → JPN (the throughput phase of ``bench_exchange``, agreement and audit on).

Usage: ``python benchmarks/profile_exchange.py [OUT_DIR] [BACKLOG]``. Writes ``TWN.txt`` and
``JPN.txt`` (collapsed stacks, for flame graph tools or ``speedscope``) and prints, per process,
the functions holding the most samples, with and without their callees.
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_exchange as bench

RATE_HZ = 200


def summary(stacks: Path, top: int = 30) -> str:
    """Per function: share of samples inside it (with callees) and on top of the stack."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [
            frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1] for frame in stack.split(";")
        ]
        for name in {frame.rsplit(":", 1)[0] for frame in frames}:
            inclusive[name] += samples
        own[frames[-1]] += samples
    lines = [f"{stacks.stem}: {total} samples at {RATE_HZ} Hz", "  with callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines.append("  own (function and line):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "profile").resolve()
    backlog = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nodes = bench.make_nodes(root)
        bench.install_agreement(nodes, root)
        bench.preload(nodes["TWN"], backlog)
        processes = [
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--rate",
                    str(RATE_HZ),
                    "--format",
                    "raw",
                    "--output",
                    str(out / f"{party}.txt"),
                    "--",
                    *bench.KUROSHIO,
                    "serve",
                    "--node",
                    str(nodes[party].directory),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(out / f"{party}.log").open("wb"),
            )
            for party in ("JPN", "TWN")
        ]
        try:
            began, ended, _ = bench.drain(nodes["JPN"].store, backlog)
            print(f"throughput {backlog / (ended - began):,.0f} obs/s while profiled")
        finally:
            for process in processes:
                process.send_signal(signal.SIGINT)
            for process in processes:
                process.wait(120)
    for party in ("JPN", "TWN"):
        print(summary(out / f"{party}.txt"))


if __name__ == "__main__":
    main()
