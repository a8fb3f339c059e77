"""Node identities: files on disk, Ed25519 signatures, and real TLS 1.3 handshakes on loopback."""

from __future__ import annotations

import base64
import pickle
import socket
import ssl
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kuroshio.errors import IdentityError, VerificationError
from kuroshio.pki import (
    NodeIdentity,
    client_ssl_context,
    create_identity,
    key_fingerprint,
    load_identity,
    peer_party,
    public_key_from_b64,
    public_key_to_b64,
    reissue_node_certificate,
    server_ssl_context,
    verify,
)


def _identity(root: Path, party: str, hostnames: Sequence[str] = ()) -> NodeIdentity:
    return create_identity(root / party.lower(), party, f"{party.lower()}-node-1", hostnames)


class _Outcome:
    def __init__(self) -> None:
        self.server_peer: bytes | None = None
        self.server_version: str | None = None
        self.server_error: BaseException | None = None
        self.client_peer: bytes | None = None
        self.client_data: bytes = b""
        self.client_error: BaseException | None = None


def _connect(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, host: str = "localhost"
) -> _Outcome:
    """One connection over loopback: the server says "ok" once the handshake is done."""
    outcome = _Outcome()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(20)
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                outcome.server_peer = tls.getpeercert(binary_form=True)
                outcome.server_version = tls.version()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as error:
            outcome.server_error = error

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=20) as raw,
            client_context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            outcome.client_peer = tls.getpeercert(binary_form=True)
            # In TLS 1.3 the server judges the client certificate after the client's handshake
            # is done, so a refusal arrives here, on the first read.
            outcome.client_data = tls.recv(2)
    except (ssl.SSLError, OSError) as error:
        outcome.client_error = error
    finally:
        thread.join(20)
        listener.close()
    return outcome


def test_pinned_partners_handshake_over_tls13_and_read_each_others_party(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    japan = _identity(tmp_path, "JPN")
    server = server_ssl_context(taiwan, [japan.ca_certificate_pem])
    client = client_ssl_context(japan, [taiwan.ca_certificate_pem])

    outcome = _connect(server, client)

    assert outcome.server_error is None and outcome.client_error is None
    assert outcome.server_version == "TLSv1.3"
    assert outcome.client_data == b"ok"
    assert outcome.server_peer is not None and outcome.client_peer is not None
    assert peer_party(outcome.server_peer, [japan.ca_certificate_pem]) == "JPN"
    assert peer_party(outcome.client_peer, [taiwan.ca_certificate_pem]) == "TWN"


def test_server_verifies_by_ip_address_too(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    japan = _identity(tmp_path, "JPN")
    outcome = _connect(
        server_ssl_context(taiwan, [japan.ca_certificate_pem]),
        client_ssl_context(japan, [taiwan.ca_certificate_pem]),
        host="127.0.0.1",
    )
    assert outcome.client_error is None and outcome.client_data == b"ok"


def test_client_whose_ca_is_not_pinned_is_refused(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    japan = _identity(tmp_path, "JPN")
    stranger = _identity(tmp_path, "USA")
    server = server_ssl_context(taiwan, [japan.ca_certificate_pem])
    # The stranger knows Taiwan's CA, but Taiwan has not pinned the stranger's.
    client = client_ssl_context(stranger, [taiwan.ca_certificate_pem])

    outcome = _connect(server, client)

    assert isinstance(outcome.server_error, ssl.SSLCertVerificationError)
    assert outcome.server_peer is None
    assert isinstance(outcome.client_error, ssl.SSLError)
    assert "unknown ca" in str(outcome.client_error).lower()
    assert outcome.client_data == b""


def test_client_refuses_a_server_outside_its_pinned_cas(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    japan = _identity(tmp_path, "JPN")
    impostor = _identity(tmp_path, "PHL")
    # Japan expects Taiwan, but whoever answers holds a certificate from another CA.
    server = server_ssl_context(impostor, [japan.ca_certificate_pem])
    client = client_ssl_context(japan, [taiwan.ca_certificate_pem])

    outcome = _connect(server, client)

    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert outcome.client_data == b""


def test_client_refuses_a_hostname_the_certificate_does_not_name(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN", hostnames=["node.twn.example"])
    japan = _identity(tmp_path, "JPN")
    server = server_ssl_context(taiwan, [japan.ca_certificate_pem])
    client = client_ssl_context(japan, [taiwan.ca_certificate_pem])

    named = _connect(server, client, host="node.twn.example")
    unnamed = _connect(server, client, host="other.twn.example")

    assert named.client_data == b"ok"
    assert isinstance(unnamed.client_error, ssl.SSLCertVerificationError)


def test_reissued_certificate_adds_a_hostname_and_keeps_ca_and_signing_key(
    tmp_path: Path,
) -> None:
    taiwan = _identity(tmp_path, "TWN")
    japan = _identity(tmp_path, "JPN")
    renewed = reissue_node_certificate(taiwan.directory, ["kuroshio.twn.example"])

    assert renewed.ca_certificate_pem == taiwan.ca_certificate_pem
    assert renewed.public_key_bytes == taiwan.public_key_bytes
    assert renewed.node_certificate_pem != taiwan.node_certificate_pem
    outcome = _connect(
        server_ssl_context(renewed, [japan.ca_certificate_pem]),
        client_ssl_context(japan, [taiwan.ca_certificate_pem]),
        host="kuroshio.twn.example",
    )
    assert outcome.client_data == b"ok"


def test_peer_party_requires_the_ca_pinned_for_that_party(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    japan = _identity(tmp_path, "JPN")
    japan_der = japan.node_certificate.public_bytes(Encoding.DER)

    assert peer_party(japan_der) == "JPN"
    assert peer_party(japan_der, [taiwan.ca_certificate_pem, japan.ca_certificate_pem]) == "JPN"
    with pytest.raises(VerificationError, match="not issued by a pinned CA of party JPN"):
        peer_party(japan_der, [taiwan.ca_certificate_pem])


def test_certificate_names_party_node_and_loopback(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN", hostnames=["kuroshio.mnd.example", "10.0.0.7"])
    certificate = taiwan.node_certificate
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert certificate.subject.rfc4514_string() == "CN=twn-node-1,O=TWN"
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "kuroshio.mnd.example"}
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.0.0.7",
    }


def test_key_files_are_private_and_certificates_public(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    keys = taiwan.keys_directory

    def mode(name: str) -> int:
        return stat.S_IMODE((keys / name).stat().st_mode)

    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert mode("signing.key") == mode("ca.key") == mode("node.key") == 0o600
    assert mode("ca.pem") == mode("node.pem") == 0o644


def test_create_refuses_to_overwrite_existing_keys(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    before = (taiwan.keys_directory / "signing.key").read_bytes()

    with pytest.raises(IdentityError, match="refusing to overwrite"):
        create_identity(taiwan.directory, "TWN", "another-node")

    assert (taiwan.keys_directory / "signing.key").read_bytes() == before


def test_load_gives_back_the_same_identity(tmp_path: Path) -> None:
    created = _identity(tmp_path, "JPN")
    loaded = load_identity(created.directory)

    assert (loaded.party, loaded.node_name) == ("JPN", "jpn-node-1")
    assert loaded.public_key_bytes == created.public_key_bytes
    verify(created.public_key_bytes, loaded.sign(b"receipt 42"), b"receipt 42")


def test_load_refuses_a_private_key_others_can_read(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    (taiwan.keys_directory / "signing.key").chmod(0o644)

    with pytest.raises(IdentityError, match="readable by others"):
        load_identity(taiwan.directory)


def test_unknown_party_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="party"):
        create_identity(tmp_path, "XXZ", "node-1")
    assert not (tmp_path / "keys").exists()


def test_signatures_verify_and_any_flipped_bit_fails(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    japan = _identity(tmp_path, "JPN")
    data = b"batch 17 root"
    signature = taiwan.sign(data)

    verify(taiwan.public_key_bytes, signature, data)
    flipped_data = bytes([data[0] ^ 0x01]) + data[1:]
    flipped_signature = signature[:10] + bytes([signature[10] ^ 0x80]) + signature[11:]
    with pytest.raises(VerificationError, match="does not match"):
        verify(taiwan.public_key_bytes, signature, flipped_data)
    with pytest.raises(VerificationError, match="does not match"):
        verify(taiwan.public_key_bytes, flipped_signature, data)
    with pytest.raises(VerificationError, match="does not match"):
        verify(japan.public_key_bytes, signature, data)
    with pytest.raises(VerificationError, match="63 bytes, not 64"):
        verify(taiwan.public_key_bytes, signature[:-1], data)


def test_public_key_text_round_trips_and_fingerprint_is_short(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    text = public_key_to_b64(taiwan.public_key_bytes)

    assert text == taiwan.public_key_b64
    assert public_key_from_b64(text) == taiwan.public_key_bytes
    assert len(taiwan.public_key_bytes) == 32
    assert taiwan.fingerprint == key_fingerprint(taiwan.public_key_bytes)
    assert len(taiwan.fingerprint) == 16 and int(taiwan.fingerprint, 16) >= 0
    with pytest.raises(VerificationError):
        public_key_from_b64("not base64!")
    with pytest.raises(VerificationError, match="32 bytes"):
        public_key_from_b64(base64.b64encode(bytes(31)).decode())


def test_repr_and_pickle_never_expose_the_private_key(tmp_path: Path) -> None:
    taiwan = _identity(tmp_path, "TWN")
    private_pem = (taiwan.keys_directory / "signing.key").read_text()
    body = "".join(private_pem.splitlines()[1:-1])

    shown = repr(taiwan) + str(taiwan)
    assert "TWN" in shown and taiwan.fingerprint in shown
    assert body not in shown and body[:20] not in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(taiwan)
