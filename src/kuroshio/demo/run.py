"""``kuroshio demo``: two (or three) sovereign nodes on loopback exchanging the scenario live.

Creates fresh nodes with new identities under ``demo-nodes/``, pins them to each other, has every
party sign one release agreement and every node install it, starts each as its own
``kuroshio serve`` process, replays each party's side of the built-in scenario
into its own node through the operator API (sped up), and reports what each side sent, received
and signed for. It drives real nodes; it does not bypass the exchange.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final

import httpx
import msgspec
from rich.console import Console
from rich.table import Table

from kuroshio.demo.scenario import plots, scenario
from kuroshio.model import (
    Kinematics,
    Marking,
    Observation,
    Platform,
    Point,
    Provenance,
    Source,
    is_party,
)
from kuroshio.node import ConfigError, init_node, open_node, save_config
from kuroshio.partners import PartnerConfig, make_card, store_card
from kuroshio.policy.agreement import EnforcedAgreement
from kuroshio.policy.commands import describe_match, describe_transforms
from kuroshio.store import ObservationFilter
from kuroshio.store.sqlite import SQLiteStore

PAIR: Final = ("TWN", "JPN")
TICK_S: Final = 0.25
PROGRESS_S: Final = 3.0
DRAIN_TIMEOUT_S: Final = 60.0
START_TIMEOUT_S: Final = 30.0


class DemoNode(msgspec.Struct, kw_only=True):
    party: str
    directory: Path
    federation_port: int
    api_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def federation_url(self) -> str:
        return f"https://127.0.0.1:{self.federation_port}"


class _Stop(Exception):
    """SIGTERM, handled like Ctrl-C."""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _make_nodes(directory: Path, parties: Sequence[str]) -> list[DemoNode]:
    if directory.exists():
        shutil.rmtree(directory)
    ports = _free_ports(2 * len(parties))
    nodes = [
        DemoNode(
            party=party,
            directory=directory / party.lower(),
            federation_port=ports[2 * i],
            api_port=ports[2 * i + 1],
        )
        for i, party in enumerate(parties)
    ]
    cards = {}
    for demo_node in nodes:
        with init_node(
            demo_node.directory,
            demo_node.party,
            port=demo_node.federation_port,
            api_port=demo_node.api_port,
        ) as node:
            identity = node.identity
            cards[demo_node.party] = make_card(
                node.party,
                node.config.node.name,
                node.config.federation.url(),
                identity.ca_certificate_pem,
                identity.public_key_b64,
            )
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            for party, card in cards.items():
                if party == demo_node.party:
                    continue
                store_card(node.directory, card)
                node.config.partners[party] = PartnerConfig(url=card.url)
            save_config(node.directory, node.config)
    return nodes


AGREEMENT_ID: Final = "demo-exchange"
COARSEN_KM: Final = 10
DELAY_S: Final = 20


def demo_agreement_text(parties: Sequence[str], valid_from: dt.datetime) -> str:
    """The demo's agreement: TWN releases air and sea reports to JPN on a 10 km grid after a short
    delay; JPN releases its reports to TWN as observed; a third party exchanges as observed with
    both. Nothing is re-released (each party sends its own reports to each partner)."""
    others = [p for p in parties if p not in PAIR]
    lines = [
        f'id = "{AGREEMENT_ID}"',
        "version = 1",
        f'title = "{" – ".join(parties)} demonstration exchange"',
        "parties = [" + ", ".join(f'"{p}"' for p in parties) + "]",
        f"valid_from = {valid_from:%Y-%m-%dT%H:%M:%SZ}",
        f"valid_until = {valid_from + dt.timedelta(days=30):%Y-%m-%dT%H:%M:%SZ}",
        "",
        "[[direction]]",
        'from = "TWN"',
        'to = ["JPN"]',
        "[[direction.rule]]",
        'id = "twn-jpn-air-sea"',
        'action = "release"',
        'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
        f"transform = {{ coarsen_km = {COARSEN_KM}, delay_s = {DELAY_S}, "
        'drop = ["provenance.record"] }',
        "",
        "[[direction]]",
        'from = "JPN"',
        'to = ["TWN"]',
        "[[direction.rule]]",
        'id = "jpn-twn-air-sea"',
        'action = "release"',
        'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
    ]
    for third in others:
        lines += [
            "",
            "[[direction]]",
            'from = "TWN"',
            f'to = ["{third}"]',
            "[[direction.rule]]",
            f'id = "twn-{third.lower()}-sea"',
            'action = "release"',
            'match = { kind = ["sea"], tlp_at_most = "AMBER" }',
            f"transform = {{ coarsen_km = {COARSEN_KM} }}",
            "",
            "[[direction]]",
            'from = "JPN"',
            f'to = ["{third}"]',
            "[[direction.rule]]",
            f'id = "jpn-{third.lower()}-air-sea"',
            'action = "release"',
            'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
            "",
            "[[direction]]",
            f'from = "{third}"',
            'to = ["JPN", "TWN"]',
            "[[direction.rule]]",
            f'id = "{third.lower()}-all"',
            'action = "release"',
            'match = { kind = ["air", "sea"], tlp_at_most = "AMBER" }',
        ]
    return "\n".join(lines) + "\n"


def _agree(nodes: Sequence[DemoNode], parties: Sequence[str]) -> EnforcedAgreement:
    """Every party signs the demo agreement with its node key; every node installs it."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = demo_agreement_text(parties, now - dt.timedelta(minutes=1))
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            text = node.sign_agreement_text(text, source=f"{AGREEMENT_ID}.toml")
    path = nodes[0].directory.parent / f"{AGREEMENT_ID}.v1.toml"
    path.write_text(text, encoding="utf-8")
    installed: EnforcedAgreement | None = None
    for demo_node in nodes:
        with open_node(demo_node.directory) as node:
            installed, _ = node.install_agreement(path)
    assert installed is not None
    return installed


def _describe_agreement(console: Console, enforced: EnforcedAgreement) -> None:
    agreement = enforced.agreement
    console.print(
        f"Agreement in force: [bold]{agreement.id} v{agreement.version}[/] between "
        f"{', '.join(agreement.parties)}, signed by every party (digest {enforced.digest[:16]}), "
        f"valid until {agreement.valid_until:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    for direction in agreement.direction:
        for recipient in direction.to:
            for rule in direction.rule:
                console.print(
                    f"  {direction.sender} → {recipient}: "
                    f"{describe_match(rule.match)} — {describe_transforms(rule.transform)}",
                    highlight=False,
                )
    console.print("  anything else: withheld (default deny)", highlight=False)


def _start(demo_node: DemoNode) -> None:
    log = (demo_node.directory / "serve.log").open("ab")
    demo_node.process = subprocess.Popen(
        [sys.executable, "-m", "kuroshio", "serve", "--node", str(demo_node.directory)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()


def _wait_ready(client: httpx.Client, demo_node: DemoNode) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        process = demo_node.process
        if process is not None and process.poll() is not None:
            raise ConfigError(
                f"the {demo_node.party} node exited ({process.returncode}); "
                f"see {demo_node.directory / 'serve.log'}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if client.get(f"{demo_node.api_url}/api/health").status_code == 200:
                return
        time.sleep(0.1)
    raise ConfigError(f"the {demo_node.party} node did not start within {START_TIMEOUT_S:.0f} s")


def _stop(nodes: Sequence[DemoNode]) -> None:
    for demo_node in nodes:
        if demo_node.process is not None and demo_node.process.poll() is None:
            demo_node.process.send_signal(signal.SIGTERM)
    for demo_node in nodes:
        if demo_node.process is None:
            continue
        try:
            demo_node.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            demo_node.process.kill()
            demo_node.process.wait()


def third_party_reports(
    party: str, start: dt.datetime, *, releasable_to: Sequence[str], seed: int = 7
) -> Iterator[Observation]:
    """What a third party's wide-area sensors report: every fifth plot of the sea groups and of
    the bombers, coarser than the coastal radars of the two neighbours."""
    rng = random.Random(f"{seed}:{party}")
    for plot in plots(start):
        sortie = plot.sortie
        if plot.index % 5 or sortie.platform_class not in ("bomber", "carrier", "survey"):
            continue
        lon = plot.lon + rng.gauss(0, 0.03)
        lat = plot.lat + rng.gauss(0, 0.03)
        yield Observation(
            id=f"{party}:demo:{sortie.name}:{plot.index}",
            origin=party,
            kind="air" if sortie.kind == "air" else "sea",
            observed_at=plot.at,
            geometry=Point(coordinates=(lon, lat)),
            platform=Platform(
                type=sortie.type,
                platform_class=sortie.platform_class,
                count=sortie.count,
                nationality="CHN",
            ),
            kinematics=Kinematics(course_deg=round(plot.course_deg, 1) % 360),
            source=Source(sensor="satellite", confidence=0.7, uncertainty_m=5_000.0),
            marking=Marking(tlp="AMBER", releasable_to=tuple(releasable_to)),
            provenance=Provenance(importer="demo", record=sortie.name),
        )


def _reports(party: str, parties: Sequence[str], start: dt.datetime) -> list[Observation]:
    others = [p for p in parties if p != party]
    if party in PAIR:
        return list(scenario(party, start, releasable_to=others))
    return list(third_party_reports(party, start, releasable_to=others))


def _corrections(reports: list[Observation]) -> list[Observation]:
    """A correction (higher count) and a retraction, to show later versions travel too."""
    bombers = [o for o in reports if o.platform and o.platform.platform_class == "bomber"]
    fighters = [o for o in reports if o.platform and o.platform.platform_class == "fighter"]
    out: list[Observation] = []
    if bombers and bombers[0].platform is not None:
        first = bombers[0]
        assert first.platform is not None
        out.append(
            msgspec.structs.replace(
                first,
                version=2,
                platform=msgspec.structs.replace(first.platform, count=first.platform.count + 1),
                remarks="count corrected after review",
            )
        )
    if fighters:
        out.append(
            msgspec.structs.replace(
                fighters[0], version=2, retracted=True, remarks="retracted: duplicate track"
            )
        )
    return out


def _post(client: httpx.Client, demo_node: DemoNode, observations: Sequence[Observation]) -> None:
    if not observations:
        return
    body = b"\n".join(msgspec.json.encode(o) for o in observations)
    response = client.post(
        f"{demo_node.api_url}/api/observations",
        content=body,
        headers={"content-type": "application/x-ndjson"},
    )
    response.raise_for_status()


def _links(client: httpx.Client, demo_node: DemoNode) -> list[dict[str, Any]]:
    try:
        response = client.get(f"{demo_node.api_url}/api/links")
        response.raise_for_status()
    except httpx.HTTPError:
        return []
    links: list[dict[str, Any]] = response.json()
    return links


def _progress(console: Console, client: httpx.Client, nodes: Sequence[DemoNode]) -> bool:
    """Print one line per node; True when every outbox is empty and every batch acked."""
    drained = True
    for demo_node in nodes:
        parts = []
        for link in _links(client, demo_node):
            out, into, live = link["outgoing"], link["incoming"], link.get("live") or {}
            state = "[green]up[/]" if live.get("connected") else "[red]down[/]"
            parts.append(
                f"→ {link['partner']} {state}: {live.get('sent_items', 0)} sent in "
                f"{out['sealed_seq']} batches, {out['acked_seq']} signed for; "
                f"{into['last_seq']} batches in"
            )
            held = out.get("held", 0)
            if held:
                parts[-1] += f"; {held} held by the agreement's delay"
            if out["pending"] - held or out["unacked_items"]:
                drained = False
        console.print(f"  [bold]{demo_node.party}[/] " + " | ".join(parts), highlight=False)
    return drained


def _summary(console: Console, nodes: Sequence[DemoNode], parties: Sequence[str]) -> None:
    table = Table(title="What each node holds (current observations, by origin)")
    table.add_column("node")
    for party in parties:
        table.add_column(f"from {party}", justify="right")
    for demo_node in nodes:
        with SQLiteStore(demo_node.directory / "store.sqlite") as store:
            counts = [str(store.count(ObservationFilter(origins=(p,)))) for p in parties]
        table.add_row(demo_node.party, *counts)
    console.print(table)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run_demo(
    directory: Path,
    console: Console,
    *,
    duration: float = 90.0,
    speed: float | None = None,
    once: bool = False,
    third: str | None = None,
) -> None:
    """Run the federated demo (see the module docstring); blocks until done or interrupted."""
    parties = list(PAIR)
    if third is not None:
        third = third.upper()
        if not is_party(third) or third in PAIR:
            raise ConfigError(f"--third {third!r}: a party code other than TWN and JPN, e.g. USA")
        parties.append(third)
    span_end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sim_span = max(o.observed_at for o in scenario("JPN", span_end)) - span_end
    start = span_end - sim_span
    reports = {party: _reports(party, parties, start) for party in parties}
    replay_speed = speed if speed else max(sim_span.total_seconds() / max(duration, 1.0), 1.0)

    console.print(f"[bold]kuroshio demo[/] — {', '.join(parties)} nodes in {directory}")
    nodes = _make_nodes(directory, parties)
    _describe_agreement(console, _agree(nodes, parties))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        for demo_node in nodes:
            _start(demo_node)
        with httpx.Client(timeout=30.0) as client:
            for demo_node in nodes:
                _wait_ready(client, demo_node)
            console.print("Nodes (each its own process; identities made just now):")
            for demo_node in nodes:
                # One line each and never wrapped: the addresses are there to be copied.
                console.print(
                    f"  {demo_node.party}  picture and API {demo_node.api_url}/  "
                    f"federation (mTLS) {demo_node.federation_url}  "
                    f"log {demo_node.directory / 'serve.log'}",
                    highlight=False,
                    soft_wrap=True,
                )
            total = sum(len(r) for r in reports.values())
            console.print(
                f"Replaying {total} sensor reports ({sim_span} of activity) at "
                f"{replay_speed:.0f}× — about {sim_span.total_seconds() / replay_speed:.0f} s",
                highlight=False,
            )
            _replay(console, client, nodes, reports, start, replay_speed)
            for demo_node in nodes:
                fixes = _corrections(reports[demo_node.party])
                _post(client, demo_node, fixes)
                if fixes:
                    what = " and ".join(
                        "a retraction" if fix.retracted else "a correction" for fix in fixes
                    )
                    console.print(
                        f"  {demo_node.party} issues {what}: later versions travel like any report",
                        highlight=False,
                    )
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while not _progress(console, client, nodes) and time.monotonic() < deadline:
                time.sleep(1.0)
            _summary(console, nodes, parties)
            for demo_node in nodes:
                console.print(
                    f"Try: kuroshio audit receipts --node {demo_node.directory} "
                    f"{next(p for p in parties if p != demo_node.party)}",
                    highlight=False,
                )
            if once:
                return
            console.print("Nodes keep serving; Ctrl-C stops them.")
            while all(n.process is not None and n.process.poll() is None for n in nodes):
                time.sleep(0.5)
            console.print("[red]a node stopped[/]; see its serve.log")
    except (KeyboardInterrupt, _Stop):
        console.print("\nstopping nodes …")
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(nodes)


def _replay(
    console: Console,
    client: httpx.Client,
    nodes: Sequence[DemoNode],
    reports: dict[str, list[Observation]],
    start: dt.datetime,
    speed: float,
) -> None:
    by_party = {n.party: n for n in nodes}
    queue = sorted(
        ((o.observed_at, party, o) for party, items in reports.items() for o in items),
        key=lambda entry: (entry[0], entry[1]),
    )
    began = time.monotonic()
    last_progress = began
    position = 0
    while position < len(queue):
        now_sim = start + dt.timedelta(seconds=(time.monotonic() - began) * speed)
        due: dict[str, list[Observation]] = {}
        while position < len(queue) and queue[position][0] <= now_sim:
            _, party, observation = queue[position]
            due.setdefault(party, []).append(observation)
            position += 1
        for party, observations in due.items():
            _post(client, by_party[party], observations)
        if time.monotonic() - last_progress >= PROGRESS_S:
            last_progress = time.monotonic()
            console.print(
                f"[dim]{now_sim:%H:%M} UTC scenario time, {position}/{len(queue)} reports[/]",
                highlight=False,
            )
            _progress(console, client, nodes)
        time.sleep(TICK_S)


__all__ = ["demo_agreement_text", "run_demo", "third_party_reports"]
