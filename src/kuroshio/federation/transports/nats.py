"""NATS JetStream: the scale-out transport of links, for nodes that share a NATS system.

The NATS server moves bytes; it is not trusted to say who is who. A sender proves its party with
a hello signed by its node key and takes only a welcome signed by the partner's pinned key; the
two agree a key per direction for the session (X25519 of ephemeral keys carried in the signed
hello and welcome, then HKDF), and every message after them (frame parts, heartbeats, close)
carries a count and an HMAC-SHA256 tag: a message anyone else puts on the session's subject, or
an old one put again, is dropped. Frames travel through one JetStream stream on per-link,
per-session subjects, each side reading its incoming subject through its own durable consumer.
Frames only: the link protocol is :mod:`kuroshio.exchange.wire`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final
from urllib.parse import urlsplit

import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kuroshio.errors import ChannelClosed, TransportError, VerificationError
from kuroshio.federation.transports import ChannelHandler, RefusalHandler
from kuroshio.partners import Partner
from kuroshio.pki import NodeIdentity, Signer, key_fingerprint, verify

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js.client import JetStreamContext

logger = logging.getLogger("kuroshio.nats")

NAMESPACE: Final = "kuroshio.v1"
STREAM: Final = "KUROSHIO_LINKS"
URL_SCHEMES: Final = ("nats", "tls")

HANDSHAKE_TIMEOUT: Final = 10.0
HELLO_MAX_BYTES: Final = 4_096
HELLO_SKEW_S: Final = 120
"""How far a hello's time may be from this node's clock."""
NONCES_REMEMBERED: Final = 100_000
"""Hello nonces held (for twice the skew) to refuse replays; beyond that new hellos wait."""
HEARTBEAT_S: Final = 5.0
SILENT_BEATS: Final = 3
"""A peer not heard from for this many heartbeat intervals is taken for gone."""
STREAM_MAX_AGE_S: Final = 3_600.0
STREAM_MAX_BYTES: Final = 1024 * 1024 * 1024
CONSUMER_INACTIVE_S: Final = 120.0
"""The NATS server removes a consumer nobody has pulled from for this long (a vanished node's)."""
PART_HEADROOM: Final = 4_096
"""Bytes of the server's max_payload left to the headers of each part."""
MIN_PART_BYTES: Final = 1_024
MAX_QUEUED_MESSAGES: Final = 2
"""Whole frames held per channel before reading pauses (back-pressure through the stream)."""
CLOSE_TIMEOUT: Final = 5.0

MESSAGE_TOO_BIG: Final = 1009
ABNORMAL_CLOSURE: Final = 1006
GOING_AWAY: Final = 1001

KIND: Final = "Kuroshio-Kind"
SIZE: Final = "Kuroshio-Size"
PART: Final = "Kuroshio-Part"
SIGNATURE: Final = "Kuroshio-Signature"
COUNT: Final = "Kuroshio-Count"
TAG: Final = "Kuroshio-Tag"

_HELLO_DOMAIN: Final = b"kuroshio nats hello/1\n"
_ANSWER_DOMAIN: Final = b"kuroshio nats answer/1\n"
_FRAME_KEYS: Final = b"kuroshio nats frame keys/1\n"
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_STREAM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Party = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
Token = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16,64}$")]
SessionKey = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
"""An X25519 public key (hex) for agreeing the session's frame keys."""


class Hello(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a sender signs to open a link session: who, to whom, which session, when."""

    sender: Party = msgspec.field(name="from")
    receiver: Party = msgspec.field(name="to")
    session: Token
    time: int
    nonce: Token
    key: SessionKey
    """The sender's ephemeral X25519 key: the frame keys of the session are agreed from it and
    the receiver's (see :func:`frame_keys`), under both nodes' signatures."""


class Answer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The receiver's signed welcome or refusal, bound to the hello by session and nonce."""

    sender: Party = msgspec.field(name="from")
    receiver: str = msgspec.field(name="to")
    session: str
    nonce: str
    time: int
    accepted: bool
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""
    key: Annotated[str, msgspec.Meta(pattern=r"^([0-9a-f]{64})?$")] = ""
    """The receiver's ephemeral X25519 key (with a welcome)."""


class _Close(msgspec.Struct, frozen=True):
    code: int
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


_hello_decoder = msgspec.json.Decoder(Hello)
_answer_decoder = msgspec.json.Decoder(Answer)
_close_decoder = msgspec.json.Decoder(_Close)
_encoder = msgspec.json.Encoder()


def hello_subject(namespace: str, party: str, signing_key: bytes) -> str:
    """Where a node takes hellos: its party and its signing key's fingerprint, so that two
    deployments sharing one NATS system never answer each other's hellos."""
    return f"{namespace}.{party}.{key_fingerprint(signing_key)}.hello"


def link_subject(namespace: str, sender: str, receiver: str, session: str, direction: str) -> str:
    """The subject of one session of link ``sender>receiver``: ``up`` carries the sender's
    frames, ``down`` the receiver's."""
    return f"{namespace}.link.{sender}.{receiver}.{session}.{direction}"


def _consumer_name(sender: str, receiver: str, session: str, direction: str) -> str:
    return f"{sender}-{receiver}-{session}-{direction}"


def frame_keys(
    private: x25519.X25519PrivateKey, peer_key: str, hello: Hello
) -> tuple[bytes, bytes]:
    """The session's two frame keys, (``up``: sender to receiver, ``down``: back), agreed by
    X25519 of the two ephemeral keys the signed hello and welcome carry, through HKDF-SHA256
    bound to the session, the parties and both keys."""
    ours = private.public_key().public_bytes_raw().hex()
    keys = sorted((ours, peer_key))
    shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(peer_key)))
    bound = f"{hello.sender}>{hello.receiver} {hello.session} {keys[0]} {keys[1]}"
    material = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=_FRAME_KEYS + bound.encode("ascii")
    ).derive(shared)
    return material[:32], material[32:]


def _tag(key: bytes, count: int, headers: Mapping[str, str], payload: bytes) -> str:
    what = f"{count}\n{headers.get(KIND, '')}\n{headers.get(SIZE, '')}\n{headers.get(PART, '')}\n"
    digest = hmac.new(key, what.encode("ascii") + payload, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_hello(
    signer: Signer,
    sender: str,
    receiver: str,
    session: str,
    *,
    now: float | None = None,
    key: x25519.X25519PrivateKey | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A fresh hello (payload and headers) from ``sender`` to ``receiver``, offering the public
    half of ``key`` (a new ephemeral key when None) for the session's frame keys."""
    offered = key or x25519.X25519PrivateKey.generate()
    hello = Hello(
        sender=sender,
        receiver=receiver,
        session=session,
        time=int(time.time() if now is None else now),
        nonce=secrets.token_hex(16),
        key=offered.public_key().public_bytes_raw().hex(),
    )
    payload = _encoder.encode(hello)
    signature = signer.sign(_HELLO_DOMAIN + payload)
    return payload, {SIGNATURE: base64.b64encode(signature).decode("ascii")}


def _signature(msg: Msg) -> bytes:
    text = (msg.headers or {}).get(SIGNATURE)
    if not text:
        raise VerificationError("no signature")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("signature is not base64") from None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    text = str(error).strip()
    name = error.__class__.__name__
    return f"{name}: {text}" if text and text != name else name


class _Refused(Exception):
    def __init__(self, reason: str, hello: Hello | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hello = hello


class _Nonces:
    """Hello nonces seen within the accepted time window (bounded)."""

    def __init__(self, keep_s: float, limit: int) -> None:
        self._keep_s = keep_s
        self._limit = limit
        self._seen: dict[str, float] = {}
        self._order: collections.deque[tuple[float, str]] = collections.deque()

    def take(self, nonce: str, now: float) -> None:
        """Record ``nonce``; :class:`_Refused` if it was seen before or the memory is full."""
        while self._order and self._order[0][0] <= now - self._keep_s:
            _, old = self._order.popleft()
            self._seen.pop(old, None)
        if nonce in self._seen:
            raise _Refused("replayed hello (its nonce was seen before)")
        if len(self._seen) >= self._limit:
            raise _Refused("too many hellos lately; try again later")
        self._seen[nonce] = now
        self._order.append((now, nonce))


class NatsChannel:
    """One end of one link session: publishes to its outgoing subject, pulls its incoming one."""

    def __init__(
        self,
        bus: _Bus,
        *,
        party: str,
        peer: str,
        outgoing: str,
        incoming: str,
        consumer: str,
        max_frame_bytes: int,
        heartbeat_s: float,
        send_key: bytes,
        receive_key: bytes,
    ) -> None:
        self._bus = bus
        self._send_key = send_key
        self._receive_key = receive_key
        self._sent = 0
        self._forged = 0
        self._party = party
        self._peer = peer
        self._outgoing = outgoing
        self._incoming = incoming
        self._consumer = consumer
        self._max_frame_bytes = max_frame_bytes
        self._heartbeat_s = heartbeat_s
        self._frames: collections.deque[bytes] = collections.deque()
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closed: ChannelClosed | None = None
        self._publish_lock = asyncio.Lock()
        self._last_published = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._released = False

    # --- Channel --------------------------------------------------------------------------

    @property
    def peer_party(self) -> str:
        return self._party

    @property
    def peer(self) -> str:
        return self._peer

    async def send(self, message: bytes) -> None:
        if self._closed is not None:
            raise self._closed
        size = len(message)
        part_size = max(self._bus.nc.max_payload - PART_HEADROOM, MIN_PART_BYTES)
        count = max(1, -(-size // part_size))
        async with self._publish_lock:
            for index in range(count):
                part = message[index * part_size : (index + 1) * part_size]
                headers = {KIND: "frame", SIZE: str(size), PART: f"{index + 1}/{count}"}
                try:
                    await self._publish(part, headers)
                except Exception as error:
                    failure = ChannelClosed(ABNORMAL_CLOSURE, f"nats: {_describe(error)}")
                    self._end(failure)
                    raise failure from None

    async def receive(self) -> bytes:
        while not self._frames:
            if self._closed is not None:
                raise self._closed
            self._readable.clear()
            await self._readable.wait()
        frame = self._frames.popleft()
        self._room.set()
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            self._end(ChannelClosed(code, reason[:120]))
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._publish(
                        _encoder.encode(_Close(code, reason[:120])), {KIND: "close"}
                    )
        current = asyncio.current_task()
        pending = [task for task in self._tasks if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._release()

    # --- inside ---------------------------------------------------------------------------

    def start(self, subscription: JetStreamContext.PullSubscription) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(subscription)),
            loop.create_task(self._beat()),
        ]

    async def _publish(self, payload: bytes, headers: dict[str, str]) -> None:
        # Every message of the session carries a count and the session key's tag over it: a
        # message anyone else puts on the subject, or an old one put again, is not taken.
        self._sent += 1
        headers = {**headers, COUNT: str(self._sent)}
        headers[TAG] = _tag(self._send_key, self._sent, headers, payload)
        await self._bus.js.publish(
            self._outgoing, payload, headers=headers, stream=self._bus.stream
        )
        self._last_published = time.monotonic()

    def _end(self, closed: ChannelClosed) -> None:
        if self._closed is None:
            self._closed = closed
        self._readable.set()
        self._room.set()

    async def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self._bus.channels.discard(self)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._bus.js.delete_consumer(self._bus.stream, self._consumer)

    async def _beat(self) -> None:
        while self._closed is None:
            await asyncio.sleep(self._heartbeat_s / 2)
            if time.monotonic() - self._last_published < self._heartbeat_s:
                continue
            # A heartbeat waits behind a frame being published: its parts prove life too.
            async with self._publish_lock:
                with contextlib.suppress(Exception):
                    await self._publish(b"", {KIND: "beat"})

    async def _read(self, subscription: JetStreamContext.PullSubscription) -> None:
        import nats.errors

        silent_after = self._heartbeat_s * SILENT_BEATS
        heard = time.monotonic()
        last_seq = 0
        taken = 0  # the count of the last authentic message
        parts: list[bytes] = []
        received = 0
        try:
            while self._closed is None:
                try:
                    messages = await subscription.fetch(1, timeout=self._heartbeat_s)
                except (TimeoutError, nats.errors.Error) as error:
                    if time.monotonic() - heard >= silent_after:
                        await self._peer_gone()
                        return
                    if not isinstance(error, TimeoutError):
                        await asyncio.sleep(min(self._heartbeat_s, 0.5))
                    continue
                for msg in messages:
                    with contextlib.suppress(Exception):
                        await msg.ack()
                    seq = msg.metadata.sequence.stream
                    if seq <= last_seq:
                        continue  # redelivered after a lost ack
                    last_seq = seq
                    headers = msg.headers or {}
                    count = self._authentic(headers, msg.data, taken)
                    if count is None:
                        continue
                    taken = count
                    heard = time.monotonic()
                    kind = headers.get(KIND)
                    if kind == "close":
                        self._peer_closed(msg.data)
                        return
                    if kind != "frame":
                        continue
                    try:
                        size = int(headers.get(SIZE, ""))
                        index, count = (int(n) for n in headers.get(PART, "").split("/"))
                    except ValueError:
                        await self._fail(1002, "a frame part without a valid size or part number")
                        return
                    if size > self._max_frame_bytes:
                        await self._fail(
                            MESSAGE_TOO_BIG,
                            f"frame of {size} bytes exceeds the limit of "
                            f"{self._max_frame_bytes} bytes",
                        )
                        return
                    # Every part but the last holds at least MIN_PART_BYTES: bounds the count.
                    if count > size // MIN_PART_BYTES + 1:
                        await self._fail(1002, f"frame of {size} bytes in {count} parts")
                        return
                    if index != len(parts) + 1 or received + len(msg.data) > size:
                        await self._fail(1002, f"frame part {index}/{count} out of order")
                        return
                    parts.append(msg.data)
                    received += len(msg.data)
                    if index < count:
                        continue
                    if received != size:
                        await self._fail(1002, f"frame of {received} bytes declared {size}")
                        return
                    await self._deliver(b"".join(parts))
                    parts, received = [], 0
                    heard = time.monotonic()
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            if self._closed is not None:
                await self._release()

    def _authentic(self, headers: Mapping[str, str], payload: bytes, last: int) -> int | None:
        """The count of a message tagged with the peer's session key and newer than the last
        one taken; None (the message is dropped, and counted) for anything else."""
        try:
            count = int(headers.get(COUNT, ""))
        except ValueError:
            count = 0
        tag = headers.get(TAG, "")
        expected = _tag(self._receive_key, count, headers, payload) if count > 0 else ""
        if count <= last or not tag or not hmac.compare_digest(tag, expected):
            self._forged += 1
            if self._forged in (1, 100, 10_000):
                logger.warning(
                    "link %s: %d message(s) without the session's tag dropped",
                    self._peer,
                    self._forged,
                )
            return None
        return count

    @property
    def dropped(self) -> int:
        """Messages on the session's subject that were not the peer's (dropped)."""
        return self._forged

    async def _deliver(self, frame: bytes) -> None:
        while len(self._frames) >= MAX_QUEUED_MESSAGES and self._closed is None:
            self._room.clear()
            await self._room.wait()
        self._frames.append(frame)
        self._readable.set()

    def _peer_closed(self, data: bytes) -> None:
        try:
            closed = _close_decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            closed = _Close(ABNORMAL_CLOSURE, "malformed close")
        self._end(ChannelClosed(closed.code, closed.reason))

    async def _peer_gone(self) -> None:
        self._end(ChannelClosed(ABNORMAL_CLOSURE, "peer silent"))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._publish(
                    _encoder.encode(_Close(GOING_AWAY, "peer silent")), {KIND: "close"}
                )

    async def _fail(self, code: int, reason: str) -> None:
        """End the channel for a fault of the peer's, telling it why."""
        self._end(ChannelClosed(code, reason))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._publish(_encoder.encode(_Close(code, reason)), {KIND: "close"})


class _Bus:
    """The NATS connection of one transport and what its channels share."""

    def __init__(self, nc: NatsClient, js: JetStreamContext, stream: str) -> None:
        self.nc = nc
        self.js = js
        self.stream = stream
        self.channels: set[NatsChannel] = set()


class NatsListener:
    """Takes hellos for this node on the NATS system until closed."""

    def __init__(self) -> None:
        self.subscription: Subscription | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.channels: set[NatsChannel] = set()

    @property
    def port(self) -> int:
        """No port of its own: the NATS server is the address."""
        return 0

    async def close(self) -> None:
        if self.subscription is not None:
            with contextlib.suppress(Exception):
                await self.subscription.unsubscribe()
            self.subscription = None
        await asyncio.gather(
            *(c.close(GOING_AWAY, "node shutting down") for c in list(self.channels)),
            return_exceptions=True,
        )
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class NatsTransport:
    """Links over a NATS JetStream system, proving parties with signed hellos."""

    def __init__(
        self,
        identity: NodeIdentity,
        partners: Mapping[str, Partner],
        *,
        url: str,
        max_frame_bytes: int,
        namespace: str = NAMESPACE,
        stream: str = STREAM,
        heartbeat_s: float = HEARTBEAT_S,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        remember: Callable[[str, float], bool] | None = None,
    ) -> None:
        """``remember(nonce, now)`` keeps a hello nonce where a restart does not lose it (the
        node's store) and says whether it is new; without it nonces are held in memory only."""
        parts = urlsplit(url)
        if parts.scheme not in URL_SCHEMES or not parts.hostname:
            raise TransportError(url, "a NATS URL is nats://host:port or tls://host:port")
        if not _NAMESPACE_RE.match(namespace):
            raise TransportError(namespace, "a subject namespace is dot-separated tokens")
        if not _STREAM_RE.match(stream):
            raise TransportError(stream, "a stream name is letters, digits, '-' and '_'")
        self._identity = identity
        self._partners = dict(partners)
        self._url = url
        self._max_frame_bytes = max_frame_bytes
        self._namespace = namespace
        self._stream = stream
        self._heartbeat_s = heartbeat_s
        self._tls = tls if tls is not None or parts.scheme != "tls" else bus_tls(identity)
        self._clock = clock
        self._nonces = _Nonces(2 * HELLO_SKEW_S, NONCES_REMEMBERED)
        self._remember = remember
        self._bus: _Bus | None = None
        self._connecting = asyncio.Lock()

    @property
    def url(self) -> str:
        return self._url

    async def connect(self, partner: Partner) -> NatsChannel:
        bus = await self._connected()
        me, them = self._identity.party, partner.party
        session = secrets.token_hex(8)
        consumer = _consumer_name(me, them, session, "down")
        incoming = link_subject(self._namespace, me, them, session, "down")
        subscription = await self._consume(bus, incoming, consumer)
        private = x25519.X25519PrivateKey.generate()
        try:
            hello, answer = await self._hello(bus, partner, session, private)
        except BaseException:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
                await bus.js.delete_consumer(self._stream, consumer)
            raise
        up, down = frame_keys(private, answer.key, hello)
        channel = NatsChannel(
            bus,
            party=them,
            peer=f"{self._url} {them} session {session}",
            outgoing=link_subject(self._namespace, me, them, session, "up"),
            incoming=incoming,
            consumer=consumer,
            max_frame_bytes=self._max_frame_bytes,
            heartbeat_s=self._heartbeat_s,
            send_key=up,
            receive_key=down,
        )
        bus.channels.add(channel)
        channel.start(subscription)
        return channel

    async def listen(
        self, host: str, port: int, handler: ChannelHandler, on_refused: RefusalHandler
    ) -> NatsListener:
        """Take partners' hellos (``host`` and ``port`` are the federation listener's and do
        not apply: the NATS server is the address)."""
        bus = await self._connected()
        listener = NatsListener()
        subject = hello_subject(
            self._namespace, self._identity.party, self._identity.public_key_bytes
        )

        async def on_hello(msg: Msg) -> None:
            await self._take_hello(bus, listener, msg, handler, on_refused)

        try:
            listener.subscription = await bus.nc.subscribe(subject, cb=on_hello)
            await bus.nc.flush(timeout=int(HANDSHAKE_TIMEOUT))
        except Exception as error:
            raise TransportError(
                self._url, f"cannot listen on {subject}: {_describe(error)}"
            ) from None
        return listener

    async def close(self) -> None:
        """Close every open channel and the NATS connection."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        await asyncio.gather(
            *(c.close(GOING_AWAY, "node shutting down") for c in list(bus.channels)),
            return_exceptions=True,
        )
        with contextlib.suppress(Exception):
            await bus.nc.close()

    # --- connection -----------------------------------------------------------------------

    async def _connected(self) -> _Bus:
        async with self._connecting:
            if self._bus is not None and not self._bus.nc.is_closed:
                return self._bus
            try:
                import nats.aio.client
                import nats.errors
            except ImportError:
                raise TransportError(
                    self._url, "nats-py is not installed: pip install 'kuroshio[nats]'"
                ) from None

            async def quiet(error: Exception) -> None:
                logger.debug("nats %s: %s", self._url, _describe(error))

            # Reconnects never stop once connected (the listener's hellos must keep coming);
            # the first connection gets HANDSHAKE_TIMEOUT, then the node is told why not.
            nc = nats.aio.client.Client()
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    await nc.connect(
                        self._url,
                        name=f"kuroshio {self._identity.party} {self._identity.node_name}",
                        tls=self._tls,
                        connect_timeout=int(HANDSHAKE_TIMEOUT / 2),
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=1,
                        error_cb=quiet,
                    )
            except (nats.errors.Error, OSError, TimeoutError, ssl.SSLError) as error:
                cause = nc.last_error or error
                with contextlib.suppress(Exception):
                    await nc.close()
                raise TransportError(self._url, f"cannot reach NATS: {_describe(cause)}") from None
            js = nc.jetstream(timeout=HANDSHAKE_TIMEOUT)
            try:
                await self._ensure_stream(nc, js)
            except BaseException:
                with contextlib.suppress(Exception):
                    await nc.close()
                raise
            self._bus = _Bus(nc, js, self._stream)
            return self._bus

    async def _ensure_stream(self, nc: NatsClient, js: JetStreamContext) -> None:
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import BadRequestError

        subjects = f"{self._namespace}.link.>"
        config = StreamConfig(
            name=self._stream,
            description="kuroshio link frames",
            subjects=[subjects],
            retention=RetentionPolicy.INTEREST,
            storage=StorageType.FILE,
            max_age=STREAM_MAX_AGE_S,
            max_bytes=STREAM_MAX_BYTES,
            discard=DiscardPolicy.NEW,
            max_msg_size=nc.max_payload,
        )
        try:
            await js.add_stream(config)
        except BadRequestError as error:
            # Made before with other limits (another node or an operator): use it if it holds
            # the link subjects.
            try:
                info = await js.stream_info(self._stream)
            except Exception:
                raise TransportError(
                    self._url, f"cannot make stream {self._stream}: {error.description}"
                ) from None
            if subjects not in (info.config.subjects or []):
                raise TransportError(
                    self._url, f"stream {self._stream} exists without subjects {subjects}"
                ) from None
        except Exception as error:
            raise TransportError(self._url, f"JetStream unavailable ({_describe(error)})") from None

    async def _consume(
        self, bus: _Bus, subject: str, consumer: str
    ) -> JetStreamContext.PullSubscription:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        config = ConsumerConfig(
            name=consumer,
            durable_name=consumer,
            filter_subject=subject,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=64,
            inactive_threshold=CONSUMER_INACTIVE_S,
        )
        try:
            await bus.js.add_consumer(self._stream, config)
            return await bus.js.pull_subscribe_bind(durable=consumer, stream=self._stream)
        except Exception as error:
            raise TransportError(
                self._url, f"cannot open consumer {consumer}: {_describe(error)}"
            ) from None

    # --- sender side of the handshake -----------------------------------------------------

    async def _hello(
        self, bus: _Bus, partner: Partner, session: str, private: x25519.X25519PrivateKey
    ) -> tuple[Hello, Answer]:
        import nats.errors

        me = self._identity.party
        subject = hello_subject(self._namespace, partner.party, partner.signing_key)
        payload, headers = signed_hello(
            self._identity, me, partner.party, session, now=self._clock(), key=private
        )
        hello = _hello_decoder.decode(payload)
        nonce = hello.nonce
        where = f"{partner.url} ({subject})"
        try:
            msg = await bus.nc.request(subject, payload, timeout=HANDSHAKE_TIMEOUT, headers=headers)
        except nats.errors.NoRespondersError:
            raise TransportError(where, f"no {partner.party} node is listening") from None
        except (nats.errors.Error, TimeoutError) as error:
            raise TransportError(where, f"hello not answered: {_describe(error)}") from None
        try:
            if len(msg.data) > HELLO_MAX_BYTES:
                raise VerificationError("answer too large")
            verify(partner.signing_key, _signature(msg), _ANSWER_DOMAIN + msg.data)
            answer = _answer_decoder.decode(msg.data)
        except VerificationError as error:
            raise TransportError(
                where, f"answer not signed by {partner.party}'s pinned key: {error.reason}"
            ) from None
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise TransportError(where, f"malformed answer: {error}") from None
        if (answer.sender, answer.receiver, answer.session, answer.nonce) != (
            partner.party,
            me,
            session,
            nonce,
        ):
            raise TransportError(where, "the answer is not for this hello")
        if not answer.accepted:
            raise TransportError(where, f"{partner.party} refused: {answer.reason}")
        if not answer.key:
            raise TransportError(where, f"{partner.party}'s welcome offers no session key")
        return hello, answer

    # --- receiver side of the handshake ---------------------------------------------------

    async def _take_hello(
        self,
        bus: _Bus,
        listener: NatsListener,
        msg: Msg,
        handler: ChannelHandler,
        on_refused: RefusalHandler,
    ) -> None:
        try:
            hello = self._check_hello(msg)
        except _Refused as refused:
            claimed = refused.hello
            peer = (
                f"{self._url} {claimed.sender} session {claimed.session}" if claimed else self._url
            )
            on_refused(peer, refused.reason)
            await self._answer(bus, msg, claimed, accepted=False, reason=refused.reason)
            return
        me, them, session = hello.receiver, hello.sender, hello.session
        peer = f"{self._url} {them} session {session}"
        consumer = _consumer_name(them, me, session, "up")
        incoming = link_subject(self._namespace, them, me, session, "up")
        try:
            subscription = await self._consume(bus, incoming, consumer)
        except TransportError as error:
            logger.warning("link %s>%s over NATS: %s", them, me, error)
            await self._answer(
                bus, msg, hello, accepted=False, reason="this node cannot open the link"
            )
            return
        private = x25519.X25519PrivateKey.generate()
        up, down = frame_keys(private, hello.key, hello)
        channel = NatsChannel(
            bus,
            party=them,
            peer=peer,
            outgoing=link_subject(self._namespace, them, me, session, "down"),
            incoming=incoming,
            consumer=consumer,
            max_frame_bytes=self._max_frame_bytes,
            heartbeat_s=self._heartbeat_s,
            send_key=down,
            receive_key=up,
        )
        bus.channels.add(channel)
        listener.channels.add(channel)
        channel.start(subscription)
        await self._answer(
            bus, msg, hello, accepted=True, key=private.public_key().public_bytes_raw().hex()
        )

        async def serve() -> None:
            try:
                await handler(channel)
            finally:
                listener.channels.discard(channel)
                await channel.close(1000, "")

        task = asyncio.get_running_loop().create_task(serve())
        listener.tasks.add(task)
        task.add_done_callback(listener.tasks.discard)

    def _check_hello(self, msg: Msg) -> Hello:
        if len(msg.data) > HELLO_MAX_BYTES:
            raise _Refused(f"hello of {len(msg.data)} bytes (at most {HELLO_MAX_BYTES})")
        try:
            hello = _hello_decoder.decode(msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise _Refused(f"not a hello: {error}") from None
        if hello.receiver != self._identity.party:
            raise _Refused(
                f"hello addressed to {hello.receiver}, this node is {self._identity.party}", hello
            )
        partner = self._partners.get(hello.sender)
        if partner is None:
            raise _Refused(f"party {hello.sender} is not pinned", hello)
        try:
            verify(partner.signing_key, _signature(msg), _HELLO_DOMAIN + msg.data)
        except VerificationError as error:
            raise _Refused(f"hello from {hello.sender}: {error.reason}", hello) from None
        now = self._clock()
        if abs(now - hello.time) > HELLO_SKEW_S:
            raise _Refused(
                f"hello from {hello.sender} is {int(now - hello.time)} s off this node's clock "
                f"(at most {HELLO_SKEW_S} s)",
                hello,
            )
        try:
            self._nonces.take(hello.nonce, now)
        except _Refused as refused:
            raise _Refused(refused.reason, hello) from None
        if self._remember is not None and not self._remember(hello.nonce, now):
            raise _Refused("replayed hello (its nonce was seen before this node restarted)", hello)
        return hello

    async def _answer(
        self,
        bus: _Bus,
        msg: Msg,
        hello: Hello | None,
        *,
        accepted: bool,
        reason: str = "",
        key: str = "",
    ) -> None:
        if not msg.reply:
            return
        answer = Answer(
            sender=self._identity.party,
            receiver=hello.sender if hello else "",
            session=hello.session if hello else "",
            nonce=hello.nonce if hello else "",
            time=int(self._clock()),
            accepted=accepted,
            reason=reason[:500],
            key=key,
        )
        payload = _encoder.encode(answer)
        signature = self._identity.sign(_ANSWER_DOMAIN + payload)
        headers = {SIGNATURE: base64.b64encode(signature).decode("ascii")}
        with contextlib.suppress(Exception):
            await bus.nc.publish(msg.reply, payload, headers=headers)


def bus_tls(identity: NodeIdentity, cafile: Path | None = None) -> ssl.SSLContext:
    """TLS to a NATS server: the CAs of ``cafile`` (default: the system's trusted CAs), this
    node's certificate as the client's (for NATS servers that ask for one)."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (OSError, ssl.SSLError) as error:
        raise TransportError(str(cafile), f"cannot read the NATS server's CAs: {error}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with contextlib.suppress(OSError, ssl.SSLError):
        context.load_cert_chain(identity.node_certificate_path, identity.node_key_path)
    return context
