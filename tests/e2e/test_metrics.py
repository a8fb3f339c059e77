"""``GET /metrics`` as a watch centre's monitoring reads it: a real Prometheus server (Debian's)
scraping two served nodes with a monitor's token, configured from ``deploy/prometheus/`` and
evaluating its alert rules; Prometheus's own ``promtool`` checking the rules against their tests
and the exposition of a node. On PostgreSQL the scraped node runs as several processes, so the
figures come from an API worker that runs no link."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from federation_nodes import ServedNode, agree, free_port, wait_until

from agreements import agreement_text
from cli_run import run
from conftest import require_services
from kuroshio.model import Marking
from observations import observation

pytestmark = pytest.mark.e2e

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
TO_JAPAN = Marking(releasable_to=("JPN",))
READY_TIMEOUT_S = 60.0


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian's prometheus package; make setup installs it)"
        if require_services():
            pytest.fail(message + "; KUROSHIO_REQUIRE_SERVICES=1 makes it required")
        pytest.skip(message)
    return found


def monitor_token(node: ServedNode) -> Path:
    """A token of an operator of the monitor role, made as docs/deployment.md says, in a file
    only its owner reads."""
    run(
        "user",
        "add",
        "prometheus",
        "--role",
        "monitor",
        "--no-password",
        "-n",
        node.directory,
        check=True,
    )
    made = run("user", "token", "prometheus", "--name", "scrape", "-n", node.directory, check=True)
    path = node.directory.parent / f"{node.party.lower()}-prometheus.token"
    path.write_text(made.stdout.strip())
    path.chmod(0o600)
    return path


class Prometheus:
    """A Prometheus server run with deploy/prometheus/'s configuration, its scrape job pointed
    at ``twn`` and a copy of it at ``jpn``, every second."""

    def __init__(self, root: Path, twn: tuple[str, Path], jpn: tuple[str, Path]) -> None:
        config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(PROMETHEUS_DIR / "kuroshio-rules.yml")]
        (job,) = config["scrape_configs"]
        partner = yaml.safe_load(yaml.safe_dump(job))
        partner["job_name"] = "kuroshio-partner"
        for each, (address, token) in ((job, twn), (partner, jpn)):
            each["static_configs"] = [{"targets": [address]}]
            each["authorization"]["credentials_file"] = str(token)
        config["scrape_configs"] = [job, partner]
        path = root / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = root / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    _tool("prometheus"),
                    f"--config.file={path}",
                    f"--storage.tsdb.path={root / 'prometheus-data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                if self.http.get("/-/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"Prometheus did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def values(self, query: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query's samples, by their labels (the metric's name left out)."""
        answer = self.http.get("/api/v1/query", params={"query": query}).json()
        assert answer["status"] == "success", answer
        return {
            tuple(sorted((k, v) for k, v in sample["metric"].items() if k != "__name__")): float(
                sample["value"][1]
            )
            for sample in answer["data"]["result"]
        }

    def value(self, query: str) -> float | None:
        """The one sample of ``query``, or None when there is none (yet)."""
        found = list(self.values(query).values())
        assert len(found) <= 1, (query, found)
        return found[0] if found else None

    def shows(self, query: str, expected: float) -> bool:
        return self.value(query) == expected

    def rules(self) -> list[dict[str, Any]]:
        """Every rule loaded, with its health (``unknown`` until first evaluated)."""
        groups = self.http.get("/api/v1/rules").json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.http.get("/api/v1/alerts").json()["data"]["alerts"]
        return found

    def stop(self) -> None:
        self.http.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def served(tmp_path: Path, backend: str) -> Iterator[tuple[ServedNode, ServedNode]]:
    twn, jpn = ServedNode(tmp_path, "TWN", backend), ServedNode(tmp_path, "JPN", backend)
    try:
        yield twn, jpn
    finally:
        twn.stop()
        jpn.stop()


def test_prometheus_scrapes_where_each_link_stands_and_alerts_on_a_partner_gone(
    tmp_path: Path, backend: str, served: tuple[ServedNode, ServedNode]
) -> None:
    twn, jpn = served
    twn.pin(jpn)
    jpn.pin(twn)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]))
    tokens = monitor_token(twn), monitor_token(jpn)
    jpn.start()
    # On PostgreSQL the API answers from a worker of its own: the links run in another process.
    twn.start(*(("--workers", "1") if backend == "postgres" else ()))
    twn.add([observation(n, marking=TO_JAPAN) for n in range(30)])
    wait_until(lambda: jpn.count("TWN:") == 30, "TWN's reports at JPN")
    prometheus = Prometheus(
        tmp_path,
        (f"127.0.0.1:{twn.api_port}", tokens[0]),
        (f"127.0.0.1:{jpn.api_port}", tokens[1]),
    )
    try:
        link = 'job="kuroshio", partner="JPN"'

        def settled() -> bool:
            acked = prometheus.value(f"kuroshio_link_batches_acked_total{{{link}}}")
            received = prometheus.value(
                'kuroshio_link_batches_received_total{job="kuroshio-partner", partner="TWN"}'
            )
            waiting = prometheus.value(
                f"kuroshio_link_unacked_items{{{link}}} + kuroshio_link_pending_items{{{link}}}"
            )
            return acked is not None and acked >= 1 and acked == received and waiting == 0

        wait_until(settled, "every batch to JPN receipted, as Prometheus scrapes it", 60)
        # The figures are the ones `kuroshio link status` gives.
        status = json.loads(run("link", "status", "-n", twn.directory, "--json", check=True).stdout)
        (to_jpn,) = status
        acked = prometheus.value(f"kuroshio_link_batches_acked_total{{{link}}}")
        assert acked == to_jpn["outgoing"]["acked_seq"] == to_jpn["outgoing"]["sealed_seq"]
        assert prometheus.values("up") == {
            (("instance", f"127.0.0.1:{twn.api_port}"), ("job", "kuroshio")): 1.0,
            (("instance", f"127.0.0.1:{jpn.api_port}"), ("job", "kuroshio-partner")): 1.0,
        }
        assert prometheus.value('kuroshio_stored_versions_total{job="kuroshio"}') == 30
        assert prometheus.value('kuroshio_stored_versions_total{job="kuroshio-partner"}') == 30
        ((labels, one),) = prometheus.values('kuroshio_node_info{job="kuroshio"}').items()
        assert one == 1 and dict(labels)["party"] == "TWN"
        wait_until(lambda: prometheus.shows(f"kuroshio_link_connected{{{link}}}", 1), "connected")
        assert prometheus.value(f"kuroshio_link_running{{{link}}}") == 1
        sealed = prometheus.value(f"kuroshio_link_last_sealed_timestamp_seconds{{{link}}}")
        assert sealed is not None and abs(sealed - time.time()) < 120
        # Every rule of deploy/prometheus/ evaluates against the real series, and none fires.
        wait_until(
            lambda: all(rule["health"] == "ok" for rule in prometheus.rules()), "rules evaluated"
        )
        assert len(prometheus.rules()) == 7
        assert prometheus.alerts() == []
        # The exposition passes Prometheus's own lint; the monitor's token reads nothing else.
        token = {"Authorization": f"Bearer {tokens[0].read_text()}"}
        with httpx.Client(base_url=twn.api_url, headers=token, timeout=30) as client:
            exposition = client.get("/metrics")
            assert exposition.status_code == 200
            assert client.get("/api/observations").status_code == 403
        lint = subprocess.run(
            [_tool("promtool"), "check", "metrics"],
            input=exposition.content,
            capture_output=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr

        # JPN goes away: its scrape fails, TWN's link says it is not connected, the items
        # released meanwhile wait, and the alert on the link starts its count.
        assert jpn.stop() == 0
        twn.add([observation(n, marking=TO_JAPAN) for n in range(30, 35)])
        wait_until(lambda: prometheus.shows('up{job="kuroshio-partner"}', 0), "JPN's scrape fails")
        wait_until(
            lambda: prometheus.shows(f"kuroshio_link_connected{{{link}}}", 0), "TWN not connected"
        )
        wait_until(
            lambda: prometheus.shows(
                f"kuroshio_link_unacked_items{{{link}}} + kuroshio_link_pending_items{{{link}}}",
                5,
            ),
            "the five items waiting for JPN",
        )
        assert prometheus.value('kuroshio_stored_versions_total{job="kuroshio"}') == 35

        def disconnected_alert() -> bool:
            return any(
                alert["labels"]["alertname"] == "KuroshioLinkDisconnected"
                and alert["labels"]["partner"] == "JPN"
                and alert["state"] == "pending"  # for 10 minutes before it fires
                for alert in prometheus.alerts()
            )

        wait_until(disconnected_alert, "KuroshioLinkDisconnected pending for JPN", 30)
    finally:
        prometheus.stop()


def test_the_alert_rules_pass_their_own_tests() -> None:
    """``promtool test rules``: each alert of deploy/prometheus/ fires when its test series say
    it should, with the labels and words the duty officer reads, and not before."""
    tested = subprocess.run(
        [_tool("promtool"), "test", "rules", str(PROMETHEUS_DIR / "kuroshio-rules.test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
