"""The NATS JetStream transport against a real NATS server: frames, signed hellos, close, liveness.

Each test uses its own subject namespace and stream, so runs sharing one server do not meet.
Needs a NATS server with JetStream at ``KUROSHIO_NATS_URL`` (default nats://127.0.0.1:4222).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import nats
import pytest

from conftest import service_unreachable
from kuroshio.errors import ChannelClosed, TransportError
from kuroshio.federation.transports import Channel
from kuroshio.federation.transports.nats import (
    Answer,
    NatsChannel,
    NatsTransport,
    hello_subject,
    link_subject,
    signed_hello,
)
from kuroshio.partners import Partner
from kuroshio.pki import NodeIdentity, create_identity, verify
from kuroshio.store.sqlite import SQLiteStore

NATS_URL = os.environ.get("KUROSHIO_NATS_URL", "nats://127.0.0.1:4222")
MiB = 1024 * 1024
GUARD_S = 60.0
"""Upper bound on any one scenario: a guard against hangs, not a timing assertion."""


@pytest.fixture(scope="module")
def nats_url() -> str:
    parts = urlsplit(NATS_URL)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 4222), timeout=3):
            pass
    except OSError as error:
        service_unreachable("NATS server", f"{NATS_URL}: {error}")
    return NATS_URL


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NodeIdentity]:
    made = {
        name: create_identity(tmp_path_factory.mktemp(name), party, f"{name}-1")
        for name, party in (("twn", "TWN"), ("jpn", "JPN"), ("kor", "KOR"), ("fake", "TWN"))
    }
    return made


def partner(identity: NodeIdentity) -> Partner:
    return Partner(
        party=identity.party,
        node=identity.node_name,
        url="nats://127.0.0.1:4222",
        ca_pem=identity.ca_certificate_pem,
        signing_key=identity.public_key_bytes,
    )


@dataclass
class Bus:
    """One test's corner of the NATS server: its own namespace and stream."""

    url: str
    namespace: str = field(default_factory=lambda: f"kuroshio.t{secrets.token_hex(6)}.v1")
    stream: str = field(default_factory=lambda: f"KUROSHIO_TEST_{secrets.token_hex(6)}")

    def transport(
        self,
        identity: NodeIdentity,
        pinned: list[NodeIdentity],
        *,
        max_frame_bytes: int = 8 * MiB,
        heartbeat_s: float = 5.0,
        remember: Callable[[str, float], bool] | None = None,
    ) -> NatsTransport:
        return NatsTransport(
            identity,
            {p.party: partner(p) for p in pinned},
            url=self.url,
            max_frame_bytes=max_frame_bytes,
            namespace=self.namespace,
            stream=self.stream,
            heartbeat_s=heartbeat_s,
            remember=remember,
        )

    async def consumers(self) -> list[str]:
        nc = await nats.connect(self.url)
        try:
            return [c.name for c in await nc.jetstream().consumers_info(self.stream)]
        finally:
            await nc.close()

    async def drop(self) -> None:
        nc = await nats.connect(self.url)
        try:
            await nc.jetstream().delete_stream(self.stream)
        except nats.js.errors.NotFoundError:
            pass
        finally:
            await nc.close()


@dataclass
class Receiving:
    """A listening node: the channels it accepted and the refusals it reported."""

    channels: asyncio.Queue[Channel] = field(default_factory=asyncio.Queue)
    refusals: list[tuple[str, str]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, channel: Channel) -> None:
        await self.channels.put(channel)
        await self.done.wait()

    def refused(self, peer: str, reason: str) -> None:
        self.refusals.append((peer, reason))


@asynccontextmanager
async def listening(transport: NatsTransport) -> AsyncIterator[Receiving]:
    receiving = Receiving()
    listener = await transport.listen("127.0.0.1", 0, receiving.handle, receiving.refused)
    try:
        yield receiving
    finally:
        receiving.done.set()
        await listener.close()
        await transport.close()


def run(bus: Bus, scenario: Callable[[], Awaitable[None]]) -> None:
    async def guarded() -> None:
        try:
            async with asyncio.timeout(GUARD_S):
                await scenario()
        finally:
            await bus.drop()

    asyncio.run(guarded())


def test_frames_cross_both_ways_including_ones_larger_than_a_nats_message(
    nats_url: str, identities: dict[str, NodeIdentity]
) -> None:
    bus = Bus(nats_url)
    twn, jpn = identities["twn"], identities["jpn"]
    big = os.urandom(2 * MiB + 12_345)  # three parts at the server's 1 MiB max_payload

    async def scenario() -> None:
        sending = bus.transport(twn, [jpn])
        async with listening(bus.transport(jpn, [twn])) as receiving:
            try:
                sender = await sending.connect(partner(jpn))
                receiver = await receiving.channels.get()
                assert (sender.peer_party, receiver.peer_party) == ("JPN", "TWN")
                await sender.send(b"hello")
                await sender.send(big)
                await sender.send(b"")
                assert await receiver.receive() == b"hello"
                assert await receiver.receive() == big
                assert await receiver.receive() == b""
                await receiver.send(big[::-1])
                await receiver.send(b"receipt")
                assert await sender.receive() == big[::-1]
                assert await sender.receive() == b"receipt"
                await sender.close()
            finally:
                await sending.close()
        assert receiving.refusals == []

    run(bus, scenario)


def test_messages_injected_on_a_session_subject_are_dropped(
    nats_url: str, identities: dict[str, NodeIdentity]
) -> None:
    """Someone who may publish on the NATS system puts frames, a close and a copy of a real frame
    on an open session's subject: none is taken; the session goes on."""
    bus = Bus(nats_url)
    twn, jpn = identities["twn"], identities["jpn"]

    async def scenario() -> None:
        sending = bus.transport(twn, [jpn])
        async with listening(bus.transport(jpn, [twn])) as receiving:
            nc = await nats.connect(nats_url)
            try:
                sender = await sending.connect(partner(jpn))
                receiver = await receiving.channels.get()
                session = sender.peer.rsplit(" ", 1)[-1]
                up = link_subject(bus.namespace, "TWN", "JPN", session, "up")
                js = nc.jetstream()
                watching = await nc.subscribe(up)  # sees what the sender publishes, as anyone may
                await sender.send(b"first")
                assert await receiver.receive() == b"first"
                copied = await watching.next_msg(timeout=10)
                forged = {"Kuroshio-Kind": "frame", "Kuroshio-Size": "6", "Kuroshio-Part": "1/1"}
                await js.publish(up, b"forged", headers=forged, stream=bus.stream)
                await js.publish(
                    up,
                    b"forged",
                    headers={**forged, "Kuroshio-Count": "99", "Kuroshio-Tag": "AAAA"},
                    stream=bus.stream,
                )
                await js.publish(up, copied.data, headers=copied.headers, stream=bus.stream)
                await js.publish(
                    up, b'{"code":1000}', headers={"Kuroshio-Kind": "close"}, stream=bus.stream
                )
                await sender.send(b"second")
                assert await receiver.receive() == b"second"
                assert isinstance(receiver, NatsChannel) and receiver.dropped == 4
                await sender.close()
            finally:
                await nc.close()
                await sending.close()

    run(bus, scenario)


def test_unpinned_and_forged_hellos_are_refused_with_the_reason_and_nothing_opens(
    nats_url: str, identities: dict[str, NodeIdentity]
) -> None:
    bus = Bus(nats_url)
    twn, jpn, kor, fake = (identities[n] for n in ("twn", "jpn", "kor", "fake"))

    async def scenario() -> None:
        async with listening(bus.transport(jpn, [twn])) as receiving:
            for stranger, expected in (
                (kor, "party KOR is not pinned"),
                (fake, "hello from TWN: signature does not match key"),
            ):
                sending = bus.transport(stranger, [jpn])
                try:
                    with pytest.raises(TransportError) as refused:
                        await sending.connect(partner(jpn))
                finally:
                    await sending.close()
                assert f"JPN refused: {expected}" in str(refused.value)
                assert expected in receiving.refusals[-1][1]
            assert len(receiving.refusals) == 2
            assert receiving.channels.empty()
            assert await bus.consumers() == []

    run(bus, scenario)


def test_a_replayed_or_stale_hello_is_refused(
    nats_url: str, identities: dict[str, NodeIdentity]
) -> None:
    bus = Bus(nats_url)
    twn, jpn = identities["twn"], identities["jpn"]
    subject = hello_subject(bus.namespace, "JPN", jpn.public_key_bytes)

    async def scenario() -> None:
        async with listening(bus.transport(jpn, [twn])) as receiving:
            nc = await nats.connect(nats_url)
            try:

                async def ask(payload: bytes, headers: dict[str, str]) -> Answer:
                    msg = await nc.request(subject, payload, timeout=10, headers=headers)
                    signature = (msg.headers or {})["Kuroshio-Signature"]
                    verify(
                        jpn.public_key_bytes,
                        base64.b64decode(signature),
                        b"kuroshio nats answer/1\n" + msg.data,
                    )
                    return msgspec.json.decode(msg.data, type=Answer)

                payload, headers = signed_hello(twn, "TWN", "JPN", secrets.token_hex(8))
                first = await ask(payload, headers)
                assert first.accepted
                accepted = await receiving.channels.get()
                await accepted.close()
                replayed = await ask(payload, headers)
                assert not replayed.accepted
                assert "replayed hello" in replayed.reason
                stale_payload, stale_headers = signed_hello(
                    twn, "TWN", "JPN", secrets.token_hex(8), now=time.time() - 600
                )
                stale = await ask(stale_payload, stale_headers)
                assert not stale.accepted
                assert "off this node's clock" in stale.reason
            finally:
                await nc.close()
            assert [reason for _, reason in receiving.refusals] == [
                replayed.reason,
                stale.reason,
            ]
            assert receiving.channels.empty()

    run(bus, scenario)


def test_a_hello_replayed_after_the_receiver_restarts_is_refused(
    nats_url: str, identities: dict[str, NodeIdentity], tmp_path: Path
) -> None:
    bus = Bus(nats_url)
    twn, jpn = identities["twn"], identities["jpn"]
    subject = hello_subject(bus.namespace, "JPN", jpn.public_key_bytes)
    store = SQLiteStore(tmp_path / "jpn.sqlite")  # JPN's node store, kept across the restart

    def remember(nonce: str, now: float) -> bool:
        with store.transaction() as tx:
            return tx.nonces.take(nonce, int(now * 1e6), int((now - 600) * 1e6))

    async def scenario() -> None:
        payload, headers = signed_hello(twn, "TWN", "JPN", secrets.token_hex(8))
        nc = await nats.connect(nats_url)
        try:
            for attempt in ("first", "after restart"):
                # A new transport each time: the receiving node started afresh.
                async with listening(bus.transport(jpn, [twn], remember=remember)) as receiving:
                    msg = await nc.request(subject, payload, timeout=10, headers=headers)
                    answer = msgspec.json.decode(msg.data, type=Answer)
                    if attempt == "first":
                        assert answer.accepted
                        await (await receiving.channels.get()).close()
                    else:
                        assert not answer.accepted
                        assert "seen before this node restarted" in answer.reason
                        assert receiving.channels.empty()
        finally:
            await nc.close()

    try:
        run(bus, scenario)
    finally:
        store.close()


def test_a_welcome_not_signed_by_the_pinned_key_is_not_taken(
    nats_url: str, identities: dict[str, NodeIdentity]
) -> None:
    bus = Bus(nats_url)
    twn, jpn, fake = identities["twn"], identities["jpn"], identities["fake"]

    async def scenario() -> None:
        # Someone on the NATS system answers hellos meant for JPN, signing with another key.
        nc = await nats.connect(nats_url)

        async def impostor(msg: nats.aio.msg.Msg) -> None:
            hello = msgspec.json.decode(msg.data)
            answer = msgspec.json.encode(
                {
                    "from": "JPN",
                    "to": hello["from"],
                    "session": hello["session"],
                    "nonce": hello["nonce"],
                    "time": int(time.time()),
                    "accepted": True,
                }
            )
            signature = fake.sign(b"kuroshio nats answer/1\n" + answer)
            headers = {"Kuroshio-Signature": base64.b64encode(signature).decode()}
            await nc.publish(msg.reply, answer, headers=headers)

        await nc.subscribe(hello_subject(bus.namespace, "JPN", jpn.public_key_bytes), cb=impostor)
        sending = bus.transport(twn, [jpn])
        try:
            with pytest.raises(TransportError) as refused:
                await sending.connect(partner(jpn))
            assert "answer not signed by JPN's pinned key" in str(refused.value)
            assert await bus.consumers() == []
        finally:
            await sending.close()
            await nc.close()

    run(bus, scenario)


def test_close_code_and_reason_reach_the_peer(
    nats_url: str, identities: dict[str, NodeIdentity]
) -> None:
    bus = Bus(nats_url)
    twn, jpn = identities["twn"], identities["jpn"]

    async def scenario() -> None:
        sending = bus.transport(twn, [jpn])
        async with listening(bus.transport(jpn, [twn])) as receiving:
            try:
                sender = await sending.connect(partner(jpn))
                receiver = await receiving.channels.get()
                await sender.send(b"last batch")
                await sender.close(4000, "operator stopped the link")
                assert await receiver.receive() == b"last batch"
                with pytest.raises(ChannelClosed) as closed:
                    await receiver.receive()
                assert (closed.value.code, closed.value.reason) == (
                    4000,
                    "operator stopped the link",
                )
                with pytest.raises(ChannelClosed):
                    await receiver.send(b"too late")
                # Both ends remove their durable consumers: nothing is left on the server.
                while await bus.consumers():
                    await asyncio.sleep(0.05)
            finally:
                await sending.close()

    run(bus, scenario)


def test_a_frame_over_the_receivers_limit_closes_the_channel_with_1009(
    nats_url: str, identities: dict[str, NodeIdentity]
) -> None:
    bus = Bus(nats_url)
    twn, jpn = identities["twn"], identities["jpn"]

    async def scenario() -> None:
        sending = bus.transport(twn, [jpn])
        async with listening(bus.transport(jpn, [twn], max_frame_bytes=2 * MiB)) as receiving:
            try:
                sender = await sending.connect(partner(jpn))
                receiver = await receiving.channels.get()
                await sender.send(os.urandom(3 * MiB))
                with pytest.raises(ChannelClosed) as at_receiver:
                    await receiver.receive()
                assert at_receiver.value.code == 1009
                assert "exceeds the limit of 2097152 bytes" in at_receiver.value.reason
                with pytest.raises(ChannelClosed) as at_sender:
                    await sender.receive()
                assert at_sender.value.code == 1009
            finally:
                await sending.close()

    run(bus, scenario)


SILENT_SENDER = """
import asyncio, sys
from pathlib import Path
from kuroshio.federation.transports.nats import NatsTransport
from kuroshio.partners import Partner
from kuroshio.pki import load_identity

url, namespace, stream, mine, theirs = sys.argv[1:6]
me, them = load_identity(Path(mine)), load_identity(Path(theirs))
pinned = Partner(party=them.party, node=them.node_name, url="nats://x:4222",
                 ca_pem=them.ca_certificate_pem, signing_key=them.public_key_bytes)

async def main() -> None:
    transport = NatsTransport(me, {them.party: pinned}, url=url, max_frame_bytes=1 << 20,
                              namespace=namespace, stream=stream, heartbeat_s=0.3)
    channel = await transport.connect(pinned)
    await channel.send(b"ready")
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_peer_killed_without_closing_is_detected_as_silent(
    nats_url: str, identities: dict[str, NodeIdentity], tmp_path: Path
) -> None:
    bus = Bus(nats_url)
    twn, jpn = identities["twn"], identities["jpn"]
    script = tmp_path / "silent_sender.py"
    script.write_text(SILENT_SENDER)

    async def scenario() -> None:
        async with listening(bus.transport(jpn, [twn], heartbeat_s=0.3)) as receiving:
            process = subprocess.Popen(
                [sys.executable, str(script), nats_url, bus.namespace, bus.stream]
                + [str(node.directory) for node in (twn, jpn)]
            )
            try:
                receiver = await receiving.channels.get()
                assert await receiver.receive() == b"ready"
                # Quiet for longer than the silence limit (3 x 0.3 s): heartbeats keep it open.
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(receiver.receive(), 1.5)
                assert process.poll() is None
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                with pytest.raises(ChannelClosed) as closed:
                    await receiver.receive()
                assert (closed.value.code, closed.value.reason) == (1006, "peer silent")
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)

    run(bus, scenario)
