"""Bad input on the federation port: each refused, audited, the peer told why, nothing stored.

JPN and TWN run as real ``kuroshio serve`` processes. USA is pinned by JPN but misbehaves: this
test speaks for it with its real keys over real mutual TLS and sends what a faulty or hostile
sender would. A stranger whose CA nobody pinned tries too. Meanwhile TWN keeps delivering.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from federation_nodes import ServedNode, agree, wait_until

from agreements import agreement_text
from kuroshio.errors import ChannelClosed
from kuroshio.exchange.batch import SealedBatch, seal
from kuroshio.exchange.receipt import open_receipt
from kuroshio.exchange.wire import (
    PROTOCOL,
    Hello,
    Message,
    Refusal,
    SignedReceipt,
    Welcome,
    decode,
    encode,
)
from kuroshio.federation.transports import Channel
from kuroshio.federation.transports.wss import WssTransport
from kuroshio.model import Marking, canonical_bytes
from kuroshio.partners import Partner, read_card
from kuroshio.pki import NodeIdentity, client_ssl_context, create_identity, load_identity
from observations import observation

T0 = dt.datetime(2026, 4, 2, 3, 0, tzinfo=dt.UTC)


class Federation:
    def __init__(self, root: Path, backend: str) -> None:
        self.twn = ServedNode(root, "TWN", backend)
        self.jpn = ServedNode(root, "JPN", backend)
        self.usa = ServedNode(root, "USA", backend)  # never served: the test speaks for it
        self.twn.pin(self.jpn)
        self.jpn.pin(self.twn)
        self.jpn.pin(self.usa)
        agree([self.twn, self.jpn], agreement_text(["TWN", "JPN"]))
        self.usa_identity = load_identity(self.usa.directory)
        self.stranger = create_identity(root / "phl", "PHL", "phl-1")
        card = read_card(self.jpn.card().read_bytes(), "jpn card")
        self.japan = Partner(
            party="JPN",
            node=card.node,
            url=card.url,
            ca_pem=card.ca_certificate.encode(),
            signing_key=self.usa_identity.public_key_bytes,  # unused by a sender
        )
        self.usa_numbers = iter(range(1_000_000))

    def usa_items(self, count: int, origin: str = "USA") -> list[bytes]:
        return [
            canonical_bytes(
                observation(
                    next(self.usa_numbers),
                    origin=origin,
                    kind="sea",
                    at=T0,
                    marking=Marking(releasable_to=("JPN",)),
                )
            )
            for _ in range(count)
        ]

    def batch(
        self, welcome: Welcome, *, seq: int | None = None, signer: NodeIdentity | None = None
    ) -> SealedBatch:
        return seal(
            signer or self.usa_identity,
            sender="USA",
            receiver="JPN",
            seq=welcome.last_seq + 1 if seq is None else seq,
            prev_hash=welcome.last_hash,
            items=self.usa_items(3),
            sealed_at=dt.datetime.now(dt.UTC),
        )


Exchange = Callable[[Channel, Welcome], Awaitable[Message | ChannelClosed]]


async def _session(federation: Federation, exchange: Exchange) -> Message | ChannelClosed:
    transport = WssTransport(
        federation.usa_identity,
        {"JPN": federation.japan},
        max_frame_bytes=64 * 1024 * 1024,
    )
    channel = await transport.connect(federation.japan)
    try:
        hello = Hello(protocol=PROTOCOL, sender="USA", receiver="JPN", acked_seq=0)
        await channel.send(encode(hello))
        welcome = decode(await channel.receive())
        assert isinstance(welcome, Welcome)
        return await exchange(channel, welcome)
    finally:
        await channel.close()


def speak(federation: Federation, exchange: Exchange) -> Message | ChannelClosed:
    return asyncio.run(_session(federation, exchange))


async def _answer(channel: Channel) -> Message | ChannelClosed:
    try:
        return decode(await channel.receive())
    except ChannelClosed as closed:
        return closed


def _sending(make: Callable[[Welcome], bytes]) -> Exchange:
    async def exchange(channel: Channel, welcome: Welcome) -> Message | ChannelClosed:
        try:
            await channel.send(make(welcome))
        except ChannelClosed as closed:
            return closed
        return await _answer(channel)

    return exchange


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Federation]:
    federation = Federation(tmp_path_factory.mktemp("federation"), backend)
    federation.jpn.start()
    federation.twn.start()
    try:
        # Two good batches first, so there is a history to replay.
        for _ in range(2):
            answer = speak(federation, _sending(lambda w: encode(federation.batch(w).frame())))
            assert isinstance(answer, SignedReceipt)
        yield federation
    finally:
        federation.twn.stop()
        federation.jpn.stop()


def _failures(node: ServedNode, code: str) -> int:
    return sum(1 for entry in node.audit("verify_failure") if entry.get("code") == code)


def _refused(federation: Federation, make: Callable[[Welcome], bytes], code: str) -> Refusal:
    jpn = federation.jpn
    stored, audited = jpn.count("USA:"), _failures(jpn, code)
    answer = speak(federation, _sending(make))
    assert isinstance(answer, Refusal), answer
    assert answer.code == code
    assert _failures(jpn, code) == audited + 1
    assert jpn.count("USA:") == stored
    return answer


@pytest.mark.e2e
def test_good_batches_are_taken_in_with_a_signed_receipt(federation: Federation) -> None:
    jpn_key = load_identity(federation.jpn.directory).public_key_bytes
    answer = speak(federation, _sending(lambda w: encode(federation.batch(w).frame())))
    assert isinstance(answer, SignedReceipt)
    receipt = open_receipt(answer, jpn_key)
    assert (receipt.sender, receipt.receiver, receipt.count, receipt.stored) == (
        "USA",
        "JPN",
        3,
        3,
    )


@pytest.mark.e2e
def test_batches_sent_back_to_back_are_receipted_in_order_before_a_bad_one(
    federation: Federation,
) -> None:
    """A receiver checks the next batch while it stores the one before: two good batches and a
    forged one sent without waiting are answered receipt, receipt, refusal, and the good ones
    stay stored."""
    jpn = federation.jpn
    jpn_key = load_identity(jpn.directory).public_key_bytes
    stored = jpn.count("USA:")

    async def three_at_once(channel: Channel, welcome: Welcome) -> Message | ChannelClosed:
        first = federation.batch(welcome)
        second = seal(
            federation.usa_identity,
            sender="USA",
            receiver="JPN",
            seq=first.header.seq + 1,
            prev_hash=first.hash,
            items=federation.usa_items(3),
            sealed_at=dt.datetime.now(dt.UTC),
        )
        forged = seal(
            federation.stranger,
            sender="USA",
            receiver="JPN",
            seq=second.header.seq + 1,
            prev_hash=second.hash,
            items=federation.usa_items(3),
            sealed_at=dt.datetime.now(dt.UTC),
        )
        for batch in (first, second, forged):
            await channel.send(encode(batch.frame()))
        answers = [await _answer(channel) for _ in range(3)]
        receipts = [open_receipt(a, jpn_key) for a in answers[:2] if isinstance(a, SignedReceipt)]
        assert [r.seq for r in receipts] == [first.header.seq, second.header.seq], answers
        return answers[2]

    answer = speak(federation, three_at_once)
    assert isinstance(answer, Refusal) and answer.code == "bad_signature", answer
    assert jpn.count("USA:") == stored + 6


@pytest.mark.e2e
def test_forged_signature(federation: Federation) -> None:
    refusal = _refused(
        federation,
        lambda w: encode(federation.batch(w, signer=federation.stranger).frame()),
        "bad_signature",
    )
    assert "signature does not match key" in refusal.reason


@pytest.mark.e2e
def test_item_altered_after_signing(federation: Federation) -> None:
    def altered(welcome: Welcome) -> bytes:
        frame = federation.batch(welcome).frame()
        swapped = [*frame.items[:2], federation.usa_items(1)[0]]
        return encode(msgspec.structs.replace(frame, items=swapped))

    refusal = _refused(federation, altered, "bad_merkle_root")
    assert "Merkle root" in refusal.reason


@pytest.mark.e2e
def test_replayed_batch(federation: Federation) -> None:
    refusal = _refused(
        federation,
        lambda w: encode(
            seal(
                federation.usa_identity,
                sender="USA",
                receiver="JPN",
                seq=1,
                prev_hash=bytes(32),
                items=federation.usa_items(3),
                sealed_at=T0,
            ).frame()
        ),
        "replayed",
    )
    assert refusal.seq == 1


@pytest.mark.e2e
def test_gap_in_sequence(federation: Federation) -> None:
    refusal = _refused(
        federation,
        lambda w: encode(federation.batch(w, seq=w.last_seq + 2).frame()),
        "out_of_order",
    )
    assert "expected batch" in refusal.reason


@pytest.mark.e2e
def test_malformed_messagepack(federation: Federation) -> None:
    refusal = _refused(federation, lambda w: b"\xc1\x00not messagepack", "malformed")
    assert "kuroshio-link/1" in refusal.reason


@pytest.mark.e2e
def test_item_from_another_origin(federation: Federation) -> None:
    def relayed(welcome: Welcome) -> bytes:
        batch = federation.batch(welcome)
        items = federation.usa_items(2, origin="TWN")
        return encode(
            seal(
                federation.usa_identity,
                sender="USA",
                receiver="JPN",
                seq=batch.header.seq,
                prev_hash=welcome.last_hash,
                items=items,
                sealed_at=T0,
            ).frame()
        )

    _refused(federation, relayed, "foreign_origin")


@pytest.mark.e2e
def test_oversized_frame(federation: Federation) -> None:
    jpn = federation.jpn
    stored, audited = jpn.count("USA:"), _failures(jpn, "frame_too_big")
    answer = speak(federation, _sending(lambda w: b"\x00" * (17 * 1024 * 1024)))
    # The peer is told at the WebSocket layer: close code 1009, message too big.
    assert isinstance(answer, ChannelClosed) and answer.code == 1009, answer
    wait_until(lambda: _failures(jpn, "frame_too_big") == audited + 1, "frame_too_big audited")
    assert jpn.count("USA:") == stored


@pytest.mark.e2e
def test_unpinned_certificate_is_refused_at_the_handshake(federation: Federation) -> None:
    jpn = federation.jpn
    before = len(jpn.audit("verify_failure"))
    # The stranger knows JPN's CA, but JPN never pinned the stranger's.
    context = client_ssl_context(federation.stranger, [federation.japan.ca_pem])
    with (
        pytest.raises(ssl.SSLError) as refused,
        socket.create_connection(("127.0.0.1", jpn.federation_port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        # In TLS 1.3 the server judges the client certificate after the client's side of the
        # handshake, so its alert arrives on the first read.
        tls.sendall(b"GET /kuroshio/link/v1 HTTP/1.1\r\nHost: jpn\r\n\r\n")
        tls.recv(100)
    assert "unknown ca" in str(refused.value).lower()
    wait_until(lambda: len(jpn.audit("verify_failure")) > before, "handshake refusal audited")
    entry = jpn.audit("verify_failure")[-1]
    assert entry["code"] == "not_pinned"
    assert "TLS handshake refused: certificate verify failed" in entry["reason"]


@pytest.mark.e2e
def test_the_node_keeps_serving_its_good_partner(federation: Federation) -> None:
    twn, jpn = federation.twn, federation.jpn
    reports = [observation(n, at=T0, marking=Marking(releasable_to=("JPN",))) for n in range(500)]
    twn.add(reports)
    wait_until(lambda: jpn.count("TWN:") == 500, "TWN reports at JPN after the faults")
    assert httpx.get(f"{jpn.api_url}/api/health").json()["status"] == "ok"
    refusals = {entry["code"] for entry in jpn.audit("verify_failure")}
    assert refusals >= {"bad_signature", "bad_merkle_root", "replayed", "out_of_order"}
    assert not twn.audit("verify_failure")
