"""The node's audit log: append-only, hash-chained, Ed25519-signed entries in the node's store.

It records what the node did (ingest, decision, send, receive, receipt, verify failure, agreement
change, access: operators, tokens and logins; partner changes) and proves later that no entry was
edited, removed or moved. It is not a data store: ``details`` is a small JSON object of
identifiers and counts, never observations or secrets.

Entry hash and signature
------------------------
Entry ``seq`` (1, 2, 3, … with no gaps) has ``hash = SHA-256(canonical)`` where ``canonical`` is
:func:`kuroshio.model.canonical_bytes` of the plain dict::

    {"v": 1, "seq": <int>, "at": "<YYYY-MM-DDTHH:MM:SS.ffffffZ>", "party": "<TWN>",
     "kind": "<kind>", "subject": "<text>", "details": <details JSON>, "prev_hash": "<hex>"}

that is UTF-8 JSON, keys sorted, no white space; ``details`` is itself the sorted-key msgspec JSON
of the caller's mapping and is stored as exactly those bytes. ``prev_hash`` is the previous
entry's hash (32 zero bytes before entry 1). ``signature`` is Ed25519 over
``b"kuroshio audit entry v1\\x00" + hash``; the prefix keeps an audit signature from ever
passing for a signature on a batch or receipt made with the same node key.

Merkle tree and witnessed heads
-------------------------------
The entries are also the leaves of an RFC 6962 Merkle tree (leaf data: the entry's hash), kept
as its complete subtrees, so that the head of the log (size, root) proves every entry up to it.
Each receipt a node gives carries its head then and a consistency proof from the head it gave
that partner before (:meth:`AuditLog.witness`): the partner keeps them, and whoever later cuts
or rewrites the log cannot show a log consistent with heads already signed. The node keeps the
heads it signed too: :func:`verify_log` reports a log shorter than, or different from, any of
them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, Literal, NamedTuple, Protocol, TypeAlias, get_args

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from kuroshio.errors import AuditError
from kuroshio.merkle import (
    appended_nodes,
    consistency_proof,
    frontier,
    leaf_hash,
    node_hash,
    root_of_frontier,
    subtree_root,
)
from kuroshio.model import canonical_bytes, is_party
from kuroshio.pki import Signer, public_key_bytes_of
from kuroshio.store.audit import AuditTable
from kuroshio.store.backend import NodeStore
from kuroshio.store.transaction import Transaction

AuditKind: TypeAlias = Literal[
    "ingest",
    "decision",
    "send",
    "receive",
    "receipt",
    "verify_failure",
    "agreement_change",
    "access",
    "partner_change",
    "message",
    "incident",
]
AUDIT_KINDS: Final[frozenset[str]] = frozenset(get_args(AuditKind))
GENESIS_HASH: Final = bytes(32)
"""The ``prev_hash`` of entry 1."""
FORMAT_VERSION: Final = 1
SIGNATURE_CONTEXT: Final = b"kuroshio audit entry v1\x00"
MAX_SUBJECT: Final = 512
MAX_DETAILS_BYTES: Final = 8_192
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"
"""Fixed width, so stored times sort as text in time order."""

# Key names that suggest a secret; a detail called e.g. ``api_token`` is refused outright.
SECRET_KEY_WORDS: Final = ("password", "passphrase", "secret", "private_key", "token", "api_key")
_MAX_REORDER_SEARCHES: Final = 64


class TreeHead(NamedTuple):
    """The Merkle head of the log: how many entries, and the root over them."""

    size: int
    root: bytes


class WitnessedHead(msgspec.Struct, frozen=True, kw_only=True):
    """The head a receipt carries, with the proof that it extends the one given before."""

    size: int
    root: bytes
    since: int | None
    """The size of the head given to the same partner before (None: the first)."""
    proof: list[bytes]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the log as written."""

    seq: int
    at: dt.datetime
    party: str
    kind: str
    subject: str
    details: dict[str, Any]
    prev_hash: bytes
    hash: bytes
    signature: bytes


class AuditHead(NamedTuple):
    """The last entry's seq and hash; remember it to detect a truncated log later."""

    seq: int
    hash: bytes


ProblemReason: TypeAlias = Literal[
    "missing",  # seq gap: entries deleted
    "edited",  # content no longer matches its signed hash
    "reordered",  # an authentic entry at another entry's place
    "bad_signature",  # hash fits the content, signature does not fit the hash
    "broken_link",  # prev_hash does not name the entry before (entry replaced and re-signed)
    "head_mismatch",  # the entry at a remembered head has a different hash now
    "truncated",  # the log ends before a remembered head
    "malformed",  # a row whose columns are not of the stored types
]


class AuditProblem(msgspec.Struct, frozen=True, kw_only=True):
    """Where (seq) the chain breaks and why."""

    seq: int
    reason: ProblemReason
    detail: str


class AuditReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of walking the whole chain."""

    checked: int
    head: AuditHead
    problems: list[AuditProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _format_time(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise AuditError("at", "time must be timezone-aware")
    return at.astimezone(dt.UTC).strftime(TIME_FORMAT)


def _parse_time(text: str, seq: int) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise AuditError(f"audit entry {seq}", f"time {text!r} is not {TIME_FORMAT}") from None


def _check_no_secrets(value: object, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            lowered = str(key).lower()
            if any(word in lowered for word in SECRET_KEY_WORDS):
                raise AuditError(f"{path}.{key}", "looks like a secret; audit details must not")
            _check_no_secrets(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            _check_no_secrets(item, f"{path}[{position}]")
    elif isinstance(value, str) and "PRIVATE KEY-----" in value:
        raise AuditError(path, "contains a private key")


def canonical_details(details: Mapping[str, object]) -> bytes:
    """The stored bytes of ``details``: sorted-key JSON, stable under decode and re-encode."""
    for key in details:
        if not isinstance(key, str):
            raise AuditError("details", f"key {key!r} is not a string")
    _check_no_secrets(details, "details")
    try:
        once = canonical_bytes(details)
    except (TypeError, ValueError, OverflowError) as error:
        raise AuditError("details", f"not encodable as JSON: {error}") from None
    # Round-trip once so that a decoded entry re-encodes to exactly the stored bytes
    # (datetimes, tuples and bytes become their JSON forms here, not at verification).
    canonical = canonical_bytes(msgspec.json.decode(once))
    if len(canonical) > MAX_DETAILS_BYTES:
        raise AuditError("details", f"{len(canonical)} bytes; keep it under {MAX_DETAILS_BYTES}")
    return canonical


def entry_hash(
    *,
    seq: int,
    at: str,
    party: str,
    kind: str,
    subject: str,
    details: bytes,
    prev_hash: bytes,
) -> bytes:
    """The hash of one entry from its stored fields (see the module docstring)."""
    record = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "at": at,
        "party": party,
        "kind": kind,
        "subject": subject,
        "details": msgspec.Raw(details),
        "prev_hash": prev_hash.hex(),
    }
    return hashlib.sha256(canonical_bytes(record)).digest()


def _public_keys(
    key: bytes | tuple[bytes, ...] | ed25519.Ed25519PublicKey,
) -> list[ed25519.Ed25519PublicKey]:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return [key]
    try:
        return [
            ed25519.Ed25519PublicKey.from_public_bytes(raw)
            for raw in ((key,) if isinstance(key, bytes) else key)
        ]
    except ValueError as error:
        raise AuditError("public key", f"not an Ed25519 public key: {error}") from None


def _signature_ok(
    keys: list[ed25519.Ed25519PublicKey], entry_hash_: bytes, signature: bytes
) -> bool:
    for key in keys:
        try:
            key.verify(signature, SIGNATURE_CONTEXT + entry_hash_)
        except InvalidSignature:
            continue
        return True
    return False


class AuditLog:
    """Appends signed entries for one party's node to the audit log of ``store``.

    ``append`` and ``append_many`` write in the caller's transaction (``tx``), so an entry is
    committed or rolled back together with the work it records. Two writers on one store never
    fork the chain: the second to claim a seq fails on the primary key.
    """

    def __init__(
        self,
        store: NodeStore,
        signing_key: Signer,
        party: str,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if not is_party(party):
            raise AuditError("party", f"{party!r} is not an ISO 3166-1 alpha-3 party code")
        self._store = store
        self._signer = signing_key
        self.party = party
        self._clock = clock

    def __repr__(self) -> str:
        return f"AuditLog(party={self.party!r}, head={self.head().seq})"

    def append(
        self,
        tx: Transaction,
        kind: str,
        subject: str,
        details: Mapping[str, object] | None = None,
    ) -> AuditEntry:
        """Write one entry in ``tx`` and return it."""
        return self.append_many(tx, [(kind, subject, details or {})])[0]

    def append_many(
        self, tx: Transaction, records: Iterable[tuple[str, str, Mapping[str, object]]]
    ) -> list[AuditEntry]:
        """Write entries in order in ``tx``; all are checked before any is written."""
        prepared: list[tuple[str, str, bytes]] = []
        for position, (kind, subject, details) in enumerate(records):
            if kind not in AUDIT_KINDS:
                raise AuditError(
                    f"record {position}", f"kind {kind!r} is not one of {sorted(AUDIT_KINDS)}"
                )
            if not subject or len(subject) > MAX_SUBJECT:
                raise AuditError(f"record {position}", f"subject must be 1-{MAX_SUBJECT} chars")
            prepared.append((kind, subject, canonical_details(details)))
        if not prepared:
            return []

        claimed = tx.audit.claim_head()
        seq, prev_hash = claimed if claimed is not None else (0, GENESIS_HASH)
        size_before = seq
        rows: list[tuple[int, str, str, str, str, str, bytes, bytes, bytes]] = []
        entries: list[AuditEntry] = []
        for kind, subject, details_json in prepared:
            seq += 1
            now = self._clock()
            at = _format_time(now)
            digest = entry_hash(
                seq=seq,
                at=at,
                party=self.party,
                kind=kind,
                subject=subject,
                details=details_json,
                prev_hash=prev_hash,
            )
            signature = self._signer.sign(SIGNATURE_CONTEXT + digest)
            text = details_json.decode("utf-8")
            rows.append((seq, at, self.party, kind, subject, text, prev_hash, digest, signature))
            entries.append(
                AuditEntry(
                    seq=seq,
                    at=_parse_time(at, seq),
                    party=self.party,
                    kind=kind,
                    subject=subject,
                    details=msgspec.json.decode(details_json),
                    prev_hash=prev_hash,
                    hash=digest,
                    signature=signature,
                )
            )
            prev_hash = digest
        tx.audit.append(rows)
        known = tx.audit.tree_nodes(frontier(size_before))
        tx.audit.add_tree_nodes(appended_nodes(size_before, [row[7] for row in rows], known))
        return entries

    def witness(self, tx: Transaction, partner: str, now: dt.datetime) -> WitnessedHead:
        """The head of the log now, for a receipt to ``partner``, with the consistency proof from
        the head given to ``partner`` before; kept as signed for ``partner``."""
        head = tree_head(tx.audit)
        before = tx.audit.last_head(partner)
        since, proof = None, []
        if before is not None and 0 < before[0] <= head.size:
            since = before[0]
            proof = consistency_proof(since, head.size, _subtrees(tx.audit))
        tx.audit.keep_head(partner, head.size, head.root, int(now.timestamp() * 1_000_000))
        return WitnessedHead(size=head.size, root=head.root, since=since, proof=proof)

    def head(self) -> AuditHead:
        """The last committed entry's (seq, hash)."""
        with self._store.transaction() as tx:
            return log_head(tx.audit)

    def entries(
        self,
        kind: str | None = None,
        since: dt.datetime | None = None,
        *,
        after_seq: int = 0,
    ) -> list[AuditEntry]:
        """Committed entries in seq order; see :func:`read_entries`."""
        with self._store.transaction() as tx:
            return list(read_entries(tx.audit, kind=kind, since=since, after_seq=after_seq))

    def verify(
        self,
        public_key: bytes | tuple[bytes, ...] | ed25519.Ed25519PublicKey | None = None,
        *,
        known_head: AuditHead | tuple[int, bytes] | None = None,
    ) -> AuditReport:
        """Walk the chain; the key defaults to this log's signer when it is a node key."""
        if public_key is None:
            public_key = _signer_public_key(self._signer)
        with self._store.transaction() as tx:
            return verify_log(tx.audit, public_key, known_head=known_head)


def _signer_public_key(signer: Signer) -> bytes:
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return public_key_bytes_of(signer)
    key = getattr(signer, "public_key_bytes", None)
    if isinstance(key, bytes):
        return key
    raise AuditError("public key", "give the public key to verify with")


def _subtrees(table: AuditTable) -> Callable[[int, int], bytes]:
    def node(level: int, index: int) -> bytes:
        found = table.tree_nodes([(level, index)]).get((level, index))
        if found is None:
            raise AuditError("audit tree", f"no subtree ({level}, {index}) is kept")
        return found

    return lambda start, size: subtree_root(start, size, node)


def tree_head(table: AuditTable, size: int | None = None) -> TreeHead:
    """The Merkle head of the first ``size`` entries (default: all) from the kept tree."""
    if size is None:
        size = log_head(table).seq
    keys = frontier(size)
    found = table.tree_nodes(keys)
    if len(found) != len(keys):
        raise AuditError("audit tree", f"the tree of the first {size} entries is incomplete")
    return TreeHead(size, root_of_frontier([found[key] for key in keys]))


def log_head(table: AuditTable) -> AuditHead:
    """(seq, hash) of the last entry, or (0, :data:`GENESIS_HASH`) for an empty log."""
    head = table.head()
    return AuditHead(0, GENESIS_HASH) if head is None else AuditHead(*head)


def read_entries(
    table: AuditTable,
    *,
    kind: str | None = None,
    since: dt.datetime | None = None,
    after_seq: int = 0,
) -> Iterator[AuditEntry]:
    """Entries in seq order, optionally of one kind, at or after ``since``, after ``after_seq``.

    Reading does not verify; use :func:`verify_log` for that.
    """
    rows = table.rows(
        kind=kind, since=None if since is None else _format_time(since), after_seq=after_seq
    )
    for row in rows:
        seq, at, party, kind_, subject, details, prev_hash, digest, signature = row
        try:
            decoded = msgspec.json.decode(details, type=dict[str, Any])
        except msgspec.DecodeError as error:
            raise AuditError(f"audit entry {seq}", f"details are not JSON: {error}") from None
        yield AuditEntry(
            seq=seq,
            at=_parse_time(at, seq),
            party=party,
            kind=kind_,
            subject=subject,
            details=decoded,
            prev_hash=bytes(prev_hash),
            hash=bytes(digest),
            signature=bytes(signature),
        )


class _Row(NamedTuple):
    seq: int
    at: str
    party: str
    kind: str
    subject: str
    details: bytes
    prev_hash: bytes
    hash: bytes
    signature: bytes

    def hash_as(self, seq: int) -> bytes:
        return entry_hash(
            seq=seq,
            at=self.at,
            party=self.party,
            kind=self.kind,
            subject=self.subject,
            details=self.details,
            prev_hash=self.prev_hash,
        )


def _typed_row(raw: tuple[Any, ...]) -> _Row | None:
    seq, at, party, kind, subject, details, prev_hash, digest, signature = raw
    texts = (at, party, kind, subject, details)
    blobs = (prev_hash, digest, signature)
    if not isinstance(seq, int) or not all(isinstance(value, str) for value in texts):
        return None
    if not all(isinstance(value, bytes) for value in blobs):
        return None
    return _Row(
        seq, at, party, kind, subject, details.encode("utf-8"), prev_hash, digest, signature
    )


class LogRows(Protocol):
    """What :func:`verify_log` reads: the store's audit table, or a log exported by a partner."""

    def rows(self) -> Iterable[tuple[Any, ...]]: ...

    def heads(self) -> list[tuple[str, int, bytes]]: ...

    def neighbours(self, prev_hash: bytes, digest: bytes) -> list[tuple[int, bool, bool]]: ...


class ExportedLog:
    """A log as ``kuroshio audit export`` wrote it (NDJSON, one entry a line), with the heads
    its party signed for this node (``heads``: size → root), for :func:`verify_log`."""

    def __init__(self, lines: Iterable[bytes], heads: Iterable[tuple[str, int, bytes]]) -> None:
        self._rows: list[tuple[Any, ...]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = msgspec.json.decode(line, type=ExportedEntry)
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                raise AuditError(
                    f"line {number}", f"not an exported audit entry: {error}"
                ) from None
            self._rows.append(
                (
                    entry.seq,
                    entry.at,
                    entry.party,
                    entry.kind,
                    entry.subject,
                    msgspec.json.encode(entry.details).decode("utf-8"),
                    bytes.fromhex(entry.prev_hash),
                    bytes.fromhex(entry.hash),
                    bytes.fromhex(entry.signature),
                )
            )
        self._heads = list(heads)

    def rows(self) -> Iterable[tuple[Any, ...]]:
        return iter(self._rows)

    def heads(self) -> list[tuple[str, int, bytes]]:
        return self._heads

    def neighbours(self, prev_hash: bytes, digest: bytes) -> list[tuple[int, bool, bool]]:
        return [
            (row[0], row[7] == prev_hash, row[6] == digest)
            for row in self._rows
            if row[7] == prev_hash or row[6] == digest
        ]


class ExportedEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One line of ``kuroshio audit export``: an entry as stored, hashes and signature in hex."""

    seq: int
    at: str
    party: str
    kind: str
    subject: str
    details: msgspec.Raw
    prev_hash: str
    hash: str
    signature: str


def export_lines(table: AuditTable) -> Iterator[bytes]:
    """The log as NDJSON lines (:class:`ExportedEntry`), for a partner to check it against the
    heads this node signed for it."""
    for seq, at, party, kind, subject, details, prev_hash, digest, signature in table.rows():
        yield msgspec.json.encode(
            ExportedEntry(
                seq=seq,
                at=at,
                party=party,
                kind=kind,
                subject=subject,
                details=msgspec.Raw(details.encode("utf-8")),
                prev_hash=bytes(prev_hash).hex(),
                hash=bytes(digest).hex(),
                signature=bytes(signature).hex(),
            )
        )


def _original_seq(table: LogRows, row: _Row) -> int | None:
    # An entry moved from seq t keeps a prev_hash naming entry t-1 and a hash named by entry
    # t+1; whichever neighbour is still in place tells us t, and the hash confirms it.
    candidates: set[int] = set()
    if row.prev_hash == GENESIS_HASH:
        candidates.add(1)
    for seq, names_prev, named_by in table.neighbours(row.prev_hash, row.hash):
        if names_prev:
            candidates.add(int(seq) + 1)
        if named_by:
            candidates.add(int(seq) - 1)
    for candidate in sorted(candidates):
        if candidate >= 1 and row.hash_as(candidate) == row.hash:
            return candidate
    return None


def verify_log(
    table: LogRows,
    public_key: bytes | tuple[bytes, ...] | ed25519.Ed25519PublicKey,
    *,
    known_head: AuditHead | tuple[int, bytes] | None = None,
) -> AuditReport:
    """Walk every entry and report each place the chain breaks, and why.

    Detects edited content, deleted entries (seq gaps), moved entries, forged or damaged
    signatures, and an entry replaced and re-signed (its successor's link breaks). A log cut
    short at the end looks whole by itself: pass the ``known_head`` remembered earlier (or held
    by a partner) to detect that. One problem is reported per place, at the first seq affected.
    """
    key = _public_keys(public_key)
    head_seq, head_hash = known_head if known_head is not None else (0, GENESIS_HASH)
    signed: dict[int, list[tuple[str, bytes]]] = {}
    for partner, size, root in table.heads():
        signed.setdefault(size, []).append((partner, root))
    stack: list[tuple[int, bytes]] = []  # the tree's frontier as the walk goes
    problems: list[AuditProblem] = []
    expected_seq = 1
    previous_hash = GENESIS_HASH
    previous_damaged = False
    checked = 0
    last = AuditHead(0, GENESIS_HASH)
    searches = 0

    def report(seq: int, reason: ProblemReason, detail: str) -> None:
        problems.append(AuditProblem(seq=seq, reason=reason, detail=detail))

    for raw in table.rows():
        checked += 1
        row = _typed_row(tuple(raw))
        if row is None:
            seq = raw[0] if isinstance(raw[0], int) else expected_seq
            report(seq, "malformed", "a column holds a value of the wrong type")
            expected_seq, previous_damaged = seq + 1, True
            continue
        seq = row.seq
        gap = seq != expected_seq
        if gap:
            missing = (
                f"entry {expected_seq} is missing"
                if seq == expected_seq + 1
                else f"entries {expected_seq}..{seq - 1} are missing"
            )
            report(expected_seq, "missing", missing)

        damaged = True
        if row.hash_as(seq) != row.hash:
            origin = None
            if searches < _MAX_REORDER_SEARCHES:
                searches += 1
                origin = _original_seq(table, row)
            if origin is not None and origin != seq:
                report(seq, "reordered", f"the entry signed as seq {origin} is stored at seq {seq}")
            else:
                report(seq, "edited", "content does not match the entry's signed hash")
        elif not _signature_ok(key, row.hash, row.signature):
            report(seq, "bad_signature", "signature does not verify with the node's key")
        elif row.prev_hash != previous_hash and not gap and not previous_damaged:
            report(seq, "broken_link", f"prev_hash does not name entry {seq - 1}")
        else:
            damaged = False

        if seq == head_seq and row.hash != head_hash:
            report(seq, "head_mismatch", "differs from the head remembered for this seq")
        stack.append((1, leaf_hash(row.hash)))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (width, left), (_, right) = stack[-2], stack[-1]
            stack[-2:] = [(2 * width, node_hash(left, right))]
        for partner, root in signed.get(checked, ()):
            if root_of_frontier([digest for _, digest in stack]) != root:
                report(
                    seq,
                    "head_mismatch",
                    f"the first {checked} entries are not those of the head signed for {partner}",
                )
        expected_seq = seq + 1
        previous_hash = row.hash
        previous_damaged = damaged
        last = AuditHead(seq, row.hash)

    if signed and max(signed) > checked:
        size = max(signed)
        who = ", ".join(sorted({partner for partner, _ in signed[size]}))
        report(
            checked + 1,
            "truncated",
            f"the log holds {checked} entries, but a head of {size} was signed for {who}: "
            "the tail is gone",
        )
    elif head_seq > last.seq:
        report(
            last.seq + 1,
            "truncated",
            f"the log ends at seq {last.seq}, but seq {head_seq} existed: the tail is gone",
        )
    return AuditReport(checked=checked, head=last, problems=problems)
