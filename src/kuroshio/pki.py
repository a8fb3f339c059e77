"""A node's identity: its Ed25519 signing key, its party CA and its mutual-TLS certificate.

Each party runs its own small CA; a node certificate carries the party code as its subject
Organization (O), so a peer's party is read from the certificate it presented and cross-checked
against the CA pinned for it. This module makes and loads keys and builds TLS 1.3 contexts; it
does not decide whom to trust (partner cards do) and never shows private key material.

Files under ``<data dir>/keys/``: ``signing.key`` (Ed25519, signs batches, receipts and audit
entries), ``ca.key`` / ``ca.pem`` (the party CA) and ``node.key`` / ``node.pem`` (the TLS key and
certificate). The TLS keys are ECDSA P-256, not Ed25519: OpenSSL accepts both for TLS 1.3, but
browsers and most TLS stacks outside OpenSSL do not accept Ed25519 certificates. Private keys are
unencrypted PKCS#8 PEM readable by the owner only (0600); ``ca.key`` is never needed at run time and
may be moved offline.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Final, NoReturn, Protocol, TypeAlias

import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuroshio.errors import IdentityError, VerificationError
from kuroshio.model import is_party

KEYS_DIR: Final = "keys"
SIGNING_KEY_FILE: Final = "signing.key"
CA_KEY_FILE: Final = "ca.key"
CA_CERT_FILE: Final = "ca.pem"
NODE_KEY_FILE: Final = "node.key"
NODE_CERT_FILE: Final = "node.pem"

PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
CA_VALID_DAYS: Final = 3650
NODE_VALID_DAYS: Final = 825
CLOCK_SKEW: Final = dt.timedelta(hours=1)
"""Certificates start this long before their creation, so a partner's slow clock accepts them."""

PASSPHRASE_ENV: Final = "KUROSHIO_KEY_PASSPHRASE"
PASSPHRASE_FILE_ENV: Final = "KUROSHIO_KEY_PASSPHRASE_FILE"
MIN_PASSPHRASE: Final = 12
ENCRYPTED_PEM: Final = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
EXPIRY_WARNING: Final = dt.timedelta(days=30)
"""Certificates that end sooner than this are warned of (``serve``, ``keys status``)."""
_PRIVATE_MODE: Final = 0o600
_PUBLIC_MODE: Final = 0o644
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$"
)
_DEFAULT_HOSTS: Final = ("localhost", "127.0.0.1", "::1")


class Signer(Protocol):
    """Anything that signs with Ed25519: a :class:`NodeIdentity` or a bare private key."""

    def sign(self, data: bytes) -> bytes: ...


# --- public keys and signatures ------------------------------------------------------------


def key_fingerprint(public_key_bytes: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key_bytes).hexdigest()[:16]


def certificate_fingerprint(certificate_pem: bytes) -> str:
    """The SHA-256 of a certificate's DER, in hex (what a partner reads out to confirm a CA)."""
    certificate = _load_certificate(certificate_pem, "certificate")
    return certificate.fingerprint(hashes.SHA256()).hex()


def public_key_to_b64(public_key_bytes: bytes) -> str:
    """The raw 32-byte Ed25519 public key as standard base64 text (for partner cards)."""
    _check_public_key_size(public_key_bytes)
    return base64.b64encode(public_key_bytes).decode("ascii")


def public_key_from_b64(text: str) -> bytes:
    """The raw public key from its base64 text; :class:`VerificationError` if malformed."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise VerificationError(f"public key is not base64: {error}") from None
    _check_public_key_size(raw)
    return raw


def _check_public_key_size(public_key_bytes: bytes) -> None:
    if len(public_key_bytes) != PUBLIC_KEY_SIZE:
        raise VerificationError(
            f"an Ed25519 public key has {PUBLIC_KEY_SIZE} bytes, not {len(public_key_bytes)}"
        )


def public_key_bytes_of(key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key of an Ed25519 key (private or public)."""
    public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


Keys: TypeAlias = bytes | tuple[bytes, ...]
"""One raw public key, or a party's keys: the current one first, then earlier ones it endorsed
its successors with (signatures made before a rotation stay verifiable)."""


def key_list(keys: Keys) -> tuple[bytes, ...]:
    """``keys`` as a tuple, the current key first."""
    return (keys,) if isinstance(keys, bytes) else keys


def verify(public_key_bytes: Keys, signature: bytes, data: bytes) -> None:
    """Check an Ed25519 signature by the key (or any of the keys); raise
    :class:`VerificationError` saying why it fails (with the current key)."""
    keys = key_list(public_key_bytes)
    try:
        _verify_one(keys[0] if keys else b"", signature, data)
    except VerificationError:
        for earlier in keys[1:]:
            with contextlib.suppress(VerificationError):
                _verify_one(earlier, signature, data)
                return
        raise


def _verify_one(public_key_bytes: bytes, signature: bytes, data: bytes) -> None:
    _check_public_key_size(public_key_bytes)
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError(f"signature has {len(signature)} bytes, not {SIGNATURE_SIZE}")
    try:
        public_key = ed25519.Ed25519PublicKey.from_public_bytes(public_key_bytes)
    except ValueError as error:
        raise VerificationError(f"malformed public key: {error}") from None
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        raise VerificationError(
            f"signature does not match key {key_fingerprint(public_key_bytes)}"
        ) from None


# --- the identity --------------------------------------------------------------------------


class NodeIdentity:
    """One node's keys and certificates, loaded from its data directory.

    ``sign`` signs with the Ed25519 key; the TLS key stays on disk for :mod:`ssl` to load.
    The repr names the node and its key fingerprint, never key material.
    """

    __slots__ = (
        "_signing_key",
        "ca_certificate",
        "directory",
        "endorsements",
        "node_certificate",
        "node_name",
        "party",
    )

    def __init__(
        self,
        *,
        directory: Path,
        party: str,
        node_name: str,
        signing_key: ed25519.Ed25519PrivateKey,
        ca_certificate: x509.Certificate,
        node_certificate: x509.Certificate,
        endorsements: Sequence[KeyEndorsement] = (),
    ) -> None:
        self.endorsements = tuple(endorsements)
        """Each earlier signing key's endorsement of its successor, oldest first."""
        self.directory = directory
        self.party = party
        self.node_name = node_name
        self._signing_key = signing_key
        self.ca_certificate = ca_certificate
        self.node_certificate = node_certificate

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of ``data`` (64 bytes)."""
        return self._signing_key.sign(data)

    @property
    def public_key_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return public_key_bytes_of(self._signing_key)

    @property
    def all_public_keys(self) -> tuple[bytes, ...]:
        """The current public key, then every earlier one, newest first: what this node's own
        older signatures (audit entries, agreements) are checked with."""
        earlier = [public_key_from_b64(e.key) for e in reversed(self.endorsements)]
        return (self.public_key_bytes, *earlier)

    @property
    def public_key_b64(self) -> str:
        """The public key as base64 text, as it appears on a partner card."""
        return public_key_to_b64(self.public_key_bytes)

    @property
    def fingerprint(self) -> str:
        """:func:`key_fingerprint` of the signing key."""
        return key_fingerprint(self.public_key_bytes)

    @property
    def ca_certificate_pem(self) -> bytes:
        """The party CA certificate, PEM: what partners pin."""
        return self.ca_certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def node_certificate_pem(self) -> bytes:
        return self.node_certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def keys_directory(self) -> Path:
        return self.directory / KEYS_DIR

    @property
    def node_certificate_path(self) -> Path:
        return self.keys_directory / NODE_CERT_FILE

    @property
    def node_key_path(self) -> Path:
        return self.keys_directory / NODE_KEY_FILE

    def __repr__(self) -> str:
        return (
            f"NodeIdentity(party={self.party!r}, node_name={self.node_name!r}, "
            f"key={self.fingerprint}, directory={str(self.directory)!r})"
        )

    def __reduce__(self) -> NoReturn:
        # Pickling would copy the private key into whatever receives the pickle.
        raise TypeError("a NodeIdentity cannot be pickled; load it from its directory instead")


def _check_party_and_name(party: str, node_name: str) -> None:
    if not is_party(party):
        raise IdentityError("party", f"{party!r} is not an ISO 3166-1 alpha-3 party code")
    if not _NODE_NAME.match(node_name):
        raise IdentityError(
            "node_name", f"{node_name!r} must be 1-63 letters, digits, '.', '_' or '-'"
        )


def _subject_alternative_names(hostnames: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in (*_DEFAULT_HOSTS, *hostnames):
        host = host.strip().lower()
        if host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not _DNS_NAME.match(host):
            raise IdentityError("hostnames", f"{host!r} is neither an IP address nor a DNS name")
        names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _key_usage(*, certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificates,
        crl_sign=certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _make_ca(party: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, party),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{party} kuroshio party CA"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _make_node_certificate(
    party: str,
    node_name: str,
    hostnames: Sequence[str],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, party),
            x509.NameAttribute(NameOID.COMMON_NAME, node_name),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(
            min(now + dt.timedelta(days=NODE_VALID_DAYS), ca_certificate.not_valid_after_utc)
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificates=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(_subject_alternative_names(hostnames), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def _private_pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: two processes initialising the same directory cannot both win, and an existing
    # key is never replaced by accident.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(descriptor, mode)  # the umask must not loosen or tighten what we promise
        file.write(data)
        file.flush()
        os.fsync(descriptor)


def create_identity(
    directory: Path, party: str, node_name: str, hostnames: Sequence[str] = ()
) -> NodeIdentity:
    """Make a new signing key, party CA and node certificate under ``directory/keys/``.

    The node certificate names ``localhost``, ``127.0.0.1``, ``::1`` and ``hostnames``. Raises
    :class:`IdentityError` if any key or certificate file is already there (nothing is written).
    """
    _check_party_and_name(party, node_name)
    keys = directory / KEYS_DIR
    targets = [
        keys / name
        for name in (SIGNING_KEY_FILE, CA_KEY_FILE, CA_CERT_FILE, NODE_KEY_FILE, NODE_CERT_FILE)
    ]
    for target in targets:
        if target.exists():
            raise IdentityError(str(target), "already exists; refusing to overwrite a key")

    now = dt.datetime.now(dt.UTC)
    signing_key = ed25519.Ed25519PrivateKey.generate()
    ca_key, ca_certificate = _make_ca(party, now)
    node_key, node_certificate = _make_node_certificate(
        party, node_name, hostnames, ca_key, ca_certificate, now
    )

    files = [
        (keys / SIGNING_KEY_FILE, _private_pem(signing_key), _PRIVATE_MODE),
        (keys / CA_KEY_FILE, _private_pem(ca_key), _PRIVATE_MODE),
        (
            keys / CA_CERT_FILE,
            ca_certificate.public_bytes(serialization.Encoding.PEM),
            _PUBLIC_MODE,
        ),
        (keys / NODE_KEY_FILE, _private_pem(node_key), _PRIVATE_MODE),
        (
            keys / NODE_CERT_FILE,
            node_certificate.public_bytes(serialization.Encoding.PEM),
            _PUBLIC_MODE,
        ),
    ]
    keys.mkdir(parents=True, exist_ok=True)
    os.chmod(keys, 0o700)
    written: list[Path] = []
    try:
        for path, data, mode in files:
            _write_new(path, data, mode)
            written.append(path)
    except BaseException as error:
        # Half an identity is worse than none: the next attempt would refuse to overwrite it.
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(error, FileExistsError):
            raise IdentityError(
                str(error.filename), "appeared while writing; refusing to overwrite"
            ) from None
        raise
    return NodeIdentity(
        directory=directory,
        party=party,
        node_name=node_name,
        signing_key=signing_key,
        ca_certificate=ca_certificate,
        node_certificate=node_certificate,
    )


def reissue_node_certificate(directory: Path, hostnames: Sequence[str] = ()) -> NodeIdentity:
    """Replace the node's TLS key and certificate (new hostnames, or before expiry).

    Needs ``ca.key``; the signing key and the CA, which partners pin, stay as they are.
    """
    current = load_identity(directory)
    keys = directory / KEYS_DIR
    ca_key = _load_private_key(keys / CA_KEY_FILE)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise IdentityError(str(keys / CA_KEY_FILE), "not an ECDSA key")
    node_key, node_certificate = _make_node_certificate(
        current.party,
        current.node_name,
        hostnames,
        ca_key,
        current.ca_certificate,
        dt.datetime.now(dt.UTC),
    )
    for name, data, mode in (
        (NODE_KEY_FILE, _private_pem(node_key), _PRIVATE_MODE),
        (NODE_CERT_FILE, node_certificate.public_bytes(serialization.Encoding.PEM), _PUBLIC_MODE),
    ):
        staging = keys / (name + ".new")
        staging.unlink(missing_ok=True)
        _write_new(staging, data, mode)
        os.replace(staging, keys / name)
    return load_identity(directory)


# --- loading -------------------------------------------------------------------------------


def _read_private(path: Path) -> bytes:
    try:
        status = path.stat()
    except FileNotFoundError:
        raise IdentityError(str(path), "missing; run `kuroshio init` first") from None
    if os.name == "posix" and stat.S_IMODE(status.st_mode) & 0o077:
        raise IdentityError(
            str(path), f"private key is readable by others (mode {stat.S_IMODE(status.st_mode):o})"
        )
    return path.read_bytes()


def passphrase() -> bytes | None:
    """The signing key's passphrase from :data:`PASSPHRASE_ENV`, or the first line of the file
    :data:`PASSPHRASE_FILE_ENV` names; None when neither is set."""
    given = os.environ.get(PASSPHRASE_ENV)
    if given:
        return given.encode("utf-8")
    named = os.environ.get(PASSPHRASE_FILE_ENV)
    if not named:
        return None
    try:
        lines = Path(named).read_text("utf-8").splitlines()
    except OSError as error:
        raise IdentityError(named, f"cannot read the passphrase file: {error.strerror}") from None
    return lines[0].encode("utf-8") if lines else b""


def _load_private_key(path: Path) -> object:
    data = _read_private(path)
    secret = None
    if ENCRYPTED_PEM in data:
        secret = passphrase()
        if secret is None:
            raise IdentityError(
                str(path),
                f"encrypted: give its passphrase in {PASSPHRASE_ENV} or a file named by "
                f"{PASSPHRASE_FILE_ENV}",
            )
    try:
        return serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError) as error:
        if secret is not None:
            raise IdentityError(str(path), "the passphrase does not open it") from None
        raise IdentityError(str(path), f"not a readable private key: {error}") from None


def protect_signing_key(directory: Path, secret: bytes) -> None:
    """Keep the node's signing key encrypted with ``secret`` (PKCS#8, the best encryption the
    cryptography library offers); from then on the node opens only with the passphrase."""
    if len(secret) < MIN_PASSPHRASE:
        raise IdentityError("passphrase", f"at least {MIN_PASSPHRASE} characters")
    path = directory / KEYS_DIR / SIGNING_KEY_FILE
    key = _load_private_key(path)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise IdentityError(str(path), "not an Ed25519 key")
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    )
    staging = path.with_name(path.name + ".new")
    staging.unlink(missing_ok=True)
    _write_new(staging, data, _PRIVATE_MODE)
    os.replace(staging, path)


def is_protected(directory: Path) -> bool:
    """Whether the signing key file is encrypted."""
    return ENCRYPTED_PEM in (directory / KEYS_DIR / SIGNING_KEY_FILE).read_bytes()


def expiring(
    certificates: Sequence[tuple[str, x509.Certificate]], now: dt.datetime, within: dt.timedelta
) -> list[str]:
    """A warning for each certificate that expired or expires within ``within`` of ``now``."""
    warnings = []
    for what, certificate in certificates:
        ends = certificate.not_valid_after_utc
        if ends <= now:
            warnings.append(f"{what} expired on {ends:%Y-%m-%d}")
        elif ends - now <= within:
            warnings.append(f"{what} expires on {ends:%Y-%m-%d}, in {(ends - now).days} days")
    return warnings


def _load_certificate(pem: bytes, location: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise IdentityError(location, f"not a PEM certificate: {error}") from None


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise IdentityError(str(path), "missing; run `kuroshio init` first") from None
    return _load_certificate(pem, str(path))


def _organization(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def _common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[0].value if len(values) == 1 else None
    return value if isinstance(value, str) else None


def load_identity(directory: Path) -> NodeIdentity:
    """Read the identity written by :func:`create_identity` and check it hangs together."""
    keys = directory / KEYS_DIR
    signing_key = _load_private_key(keys / SIGNING_KEY_FILE)
    if not isinstance(signing_key, ed25519.Ed25519PrivateKey):
        raise IdentityError(str(keys / SIGNING_KEY_FILE), "not an Ed25519 key")
    ca_certificate = _read_certificate(keys / CA_CERT_FILE)
    node_certificate = _read_certificate(keys / NODE_CERT_FILE)
    node_key = _load_private_key(keys / NODE_KEY_FILE)

    location = str(keys / NODE_CERT_FILE)
    node_public = node_certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if (
        not isinstance(node_key, ec.EllipticCurvePrivateKey)
        or node_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != node_public
    ):
        raise IdentityError(location, f"does not match the key in {NODE_KEY_FILE}")
    try:
        node_certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise IdentityError(location, f"was not issued by the CA in {CA_CERT_FILE}") from None
    party = _organization(node_certificate.subject)
    node_name = _common_name(node_certificate.subject)
    if party is None or node_name is None or party != _organization(ca_certificate.subject):
        raise IdentityError(location, "subject must name the same party (O) as the CA, and a CN")
    return NodeIdentity(
        directory=directory,
        party=party,
        node_name=node_name,
        signing_key=signing_key,
        ca_certificate=ca_certificate,
        node_certificate=node_certificate,
        endorsements=read_endorsements(directory),
    )


# --- rotation -----------------------------------------------------------------------------

ROTATION_CONTEXT: Final = b"kuroshio key rotation v1\x00"
ENDORSEMENTS_FILE: Final = "previous-keys.json"


class KeyEndorsement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A retired signing key's signature over the key that replaced it: partners who pinned the
    old key take the new one on its word, without meeting again."""

    key: Annotated[str, msgspec.Meta(max_length=100)]
    """The retired key (base64)."""
    successor: Annotated[str, msgspec.Meta(max_length=100)]
    """The key that replaced it (base64)."""
    signature: Annotated[str, msgspec.Meta(max_length=200)]
    """By ``key``, over :data:`ROTATION_CONTEXT`, the party and the successor's raw bytes."""
    retired_at: dt.datetime


def endorsed_bytes(party: str, successor: bytes) -> bytes:
    return ROTATION_CONTEXT + party.encode("ascii") + b"\x00" + successor


def follow_endorsements(
    party: str, endorsements: Sequence[KeyEndorsement], start: bytes, location: str
) -> bytes:
    """The key ``start`` leads to through ``endorsements`` (each signed by the key before it);
    raises :class:`IdentityError` at the first that does not check out."""
    key = start
    for index, endorsement in enumerate(endorsements):
        where = f"{location}: previous_keys[{index}]"
        try:
            retired = public_key_from_b64(endorsement.key)
            successor = public_key_from_b64(endorsement.successor)
            signature = base64.b64decode(endorsement.signature, validate=True)
        except (VerificationError, binascii.Error, ValueError) as error:
            raise IdentityError(where, f"unreadable: {error}") from None
        if retired != key:
            continue  # an endorsement from before the key this chain starts at
        try:
            verify(retired, signature, endorsed_bytes(party, successor))
        except VerificationError as error:
            raise IdentityError(where, f"endorsement does not check out: {error.reason}") from None
        key = successor
    return key


def read_endorsements(directory: Path) -> list[KeyEndorsement]:
    """The endorsements of this node's earlier signing keys, oldest first."""
    path = directory / KEYS_DIR / ENDORSEMENTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        return msgspec.json.decode(data, type=list[KeyEndorsement])
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise IdentityError(str(path), f"unreadable: {error}") from None


def _certificate_names(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    dns = names.value.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)]
    return [name for name in [*dns, *ips] if name not in _DEFAULT_HOSTS]


def rotate_keys(directory: Path, now: dt.datetime | None = None) -> KeyEndorsement:
    """A new signing key, endorsed by the old one (kept in :data:`ENDORSEMENTS_FILE` for the
    partner card), and a new TLS key and certificate from the same CA for the same names. The
    old private key is gone; a passphrase-protected key stays protected with the same one."""
    current = load_identity(directory)
    keys = directory / KEYS_DIR
    now = now or dt.datetime.now(dt.UTC)
    new_key = ed25519.Ed25519PrivateKey.generate()
    successor = public_key_bytes_of(new_key)
    endorsement = KeyEndorsement(
        key=current.public_key_b64,
        successor=public_key_to_b64(successor),
        signature=base64.b64encode(current.sign(endorsed_bytes(current.party, successor))).decode(
            "ascii"
        ),
        retired_at=now,
    )
    chain = [*current.endorsements, endorsement]
    secret = passphrase() if is_protected(directory) else None
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret)
        if secret is not None
        else serialization.NoEncryption()
    )
    for name, data, mode in (
        (ENDORSEMENTS_FILE, msgspec.json.encode(chain), _PUBLIC_MODE),
        (
            SIGNING_KEY_FILE,
            new_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            ),
            _PRIVATE_MODE,
        ),
    ):
        staging = keys / (name + ".new")
        staging.unlink(missing_ok=True)
        _write_new(staging, data, mode)
        os.replace(staging, keys / name)
    reissue_node_certificate(directory, _certificate_names(current.node_certificate))
    return endorsement


# --- TLS -----------------------------------------------------------------------------------


def _trusted_certificates(trusted_ca_pems: Sequence[bytes]) -> list[x509.Certificate]:
    certificates: list[x509.Certificate] = []
    for position, pem in enumerate(trusted_ca_pems):
        location = f"trusted CA #{position}"
        certificate = _load_certificate(pem, location)
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            raise IdentityError(location, "has no basic constraints; not a CA") from None
        if not constraints.value.ca:
            raise IdentityError(location, "is not a CA certificate")
        if _organization(certificate.subject) is None:
            raise IdentityError(location, "names no party (subject O)")
        certificates.append(certificate)
    return certificates


def _tls_context(
    purpose: int, identity: NodeIdentity, trusted_ca_pems: Sequence[bytes]
) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    # Strict checking now, so certificates that newer Pythons reject by default never ship.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(identity.node_certificate_path, identity.node_key_path)
    certificates = _trusted_certificates(trusted_ca_pems)
    if certificates:
        context.load_verify_locations(
            cadata="".join(
                c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates
            )
        )
    return context


def server_ssl_context(identity: NodeIdentity, trusted_ca_pems: Sequence[bytes]) -> ssl.SSLContext:
    """TLS 1.3 server side: presents the node certificate, requires a client certificate from
    one of ``trusted_ca_pems`` (the pinned partner CAs, and nothing else)."""
    return _tls_context(ssl.PROTOCOL_TLS_SERVER, identity, trusted_ca_pems)


def client_ssl_context(identity: NodeIdentity, trusted_ca_pems: Sequence[bytes]) -> ssl.SSLContext:
    """TLS 1.3 client side: presents the node certificate, accepts a server only if its
    certificate chains to one of ``trusted_ca_pems`` and names the host connected to."""
    context = _tls_context(ssl.PROTOCOL_TLS_CLIENT, identity, trusted_ca_pems)
    context.check_hostname = True
    return context


def peer_party(certificate_der: bytes, trusted_ca_pems: Sequence[bytes] = ()) -> str:
    """The party a peer certificate (DER, e.g. ``getpeercert(binary_form=True)``) speaks for.

    With ``trusted_ca_pems``, the certificate must also be signed directly by one of those CAs
    whose own subject names the same party, so one partner's CA cannot vouch for another party.
    Raises :class:`VerificationError`.
    """
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
    except ValueError as error:
        raise VerificationError(f"not a DER certificate: {error}", "peer certificate") from None
    party = _organization(certificate.subject)
    if party is None or not is_party(party):
        raise VerificationError(f"subject O {party!r} is not a party code", "peer certificate")
    if not trusted_ca_pems:
        return party
    for ca in _trusted_certificates(trusted_ca_pems):
        if _organization(ca.subject) != party:
            continue
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return party
    raise VerificationError(f"not issued by a pinned CA of party {party}", "peer certificate")
