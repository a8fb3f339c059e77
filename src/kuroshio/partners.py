"""Partner cards and pinned partners: who this node trusts and how to reach them.

A card is what a party hands another out of band: its party, node name, federation URL, CA
certificate and Ed25519 signing key. Pinning a card stores it under ``partners/`` and adds a
``[partners.XXX]`` section to the node config. This module reads and checks cards; it does not
open connections or decide releases (what a partner receives is the signed agreement's to say:
see :mod:`kuroshio.policy` and :mod:`kuroshio.exchange.release`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec
from cryptography import x509
from cryptography.x509.oid import NameOID

from kuroshio.errors import IdentityError, PartnerError, VerificationError
from kuroshio.model import PartyCode, is_party
from kuroshio.pki import (
    KeyEndorsement,
    certificate_fingerprint,
    follow_endorsements,
    key_fingerprint,
    public_key_from_b64,
)

CARD_FORMAT: Final = "kuroshio-partner-card/1"
PARTNERS_DIR: Final = "partners"
URL_SCHEMES: Final = ("https://", "wss://", "nats://")
"""``nats://``: reach the partner through the NATS JetStream server of ``[federation] nats_url``."""


class PartnerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[partners.XXX]`` section of a node config."""

    url: Annotated[str, msgspec.Meta(min_length=8, max_length=500)]
    """Federation URL of the partner node, e.g. ``https://jpn.example:8443``."""


class PartnerCard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one party gives another to be pinned (JSON, safe to publish: no secrets)."""

    format: Literal["kuroshio-partner-card/1"] = CARD_FORMAT
    party: PartyCode
    node: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    url: Annotated[str, msgspec.Meta(min_length=8, max_length=500)]
    ca_certificate: Annotated[str, msgspec.Meta(max_length=20_000)]
    """The party CA certificate (PEM)."""
    signing_key: Annotated[str, msgspec.Meta(max_length=100)]
    """The node's Ed25519 public key, base64."""
    ca_fingerprint: str = ""
    """SHA-256 of the CA certificate, for reading out over the telephone."""
    previous_keys: Annotated[tuple[KeyEndorsement, ...], msgspec.Meta(max_length=100)] = ()
    """The party's earlier signing keys, each endorsing its successor (oldest first): a partner
    that pinned an earlier key takes this card's key on that word."""
    key_fingerprint: str = ""


class Partner(msgspec.Struct, frozen=True, kw_only=True):
    """A pinned partner, resolved: its card's trust material and this node's config for it."""

    party: str
    node: str
    url: str
    ca_pem: bytes
    signing_key: bytes
    previous_keys: tuple[bytes, ...] = ()
    """Earlier signing keys of the partner, newest first (its older signatures stay valid)."""

    @property
    def key_fingerprint(self) -> str:
        return key_fingerprint(self.signing_key)

    @property
    def signing_keys(self) -> tuple[bytes, ...]:
        """The current key, then the earlier ones: what its signatures are checked with."""
        return (self.signing_key, *self.previous_keys)


_card_decoder = msgspec.json.Decoder(PartnerCard)
_card_encoder = msgspec.json.Encoder()


def check_url(url: str, location: str) -> str:
    if not url.startswith(URL_SCHEMES):
        raise PartnerError(location, f"URL {url!r} must start with https://, wss:// or nats://")
    return url


def _ca_party(pem: str, location: str) -> str:
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as error:
        raise PartnerError(location, f"CA certificate is not PEM: {error}") from None
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        raise PartnerError(location, "the certificate is not a CA (no basic constraints)") from None
    if not constraints.value.ca:
        raise PartnerError(location, "the certificate is not a CA")
    names = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    value = names[0].value if len(names) == 1 else None
    if not isinstance(value, str):
        raise PartnerError(location, "the CA certificate names no party (subject O)")
    return value


def make_card(
    party: str,
    node: str,
    url: str,
    ca_pem: bytes,
    signing_key_b64: str,
    previous_keys: Sequence[KeyEndorsement] = (),
) -> PartnerCard:
    """This node's card, with fingerprints filled in (and its earlier keys' endorsements)."""
    return PartnerCard(
        party=party,
        node=node,
        url=url,
        ca_certificate=ca_pem.decode("ascii"),
        signing_key=signing_key_b64,
        ca_fingerprint=certificate_fingerprint(ca_pem),
        key_fingerprint=key_fingerprint(public_key_from_b64(signing_key_b64)),
        previous_keys=tuple(previous_keys),
    )


def check_successor(card: PartnerCard, pinned: Partner, location: str) -> bool:
    """Whether ``card`` is for the key pinned for its party or for a successor that key endorsed
    (then True: a rotation); raises :class:`PartnerError` for another key, or another CA."""
    key = public_key_from_b64(card.signing_key)
    if key == pinned.signing_key:
        return False
    if card.ca_certificate.encode("ascii") != pinned.ca_pem:
        raise PartnerError(location, f"{card.party}'s CA changed: meet {card.party} again")
    try:
        reached = follow_endorsements(card.party, card.previous_keys, pinned.signing_key, location)
    except IdentityError as error:
        raise PartnerError(location, error.reason) from None
    if reached != key:
        raise PartnerError(
            location,
            f"{card.party}'s signing key changed from {key_fingerprint(pinned.signing_key)} to "
            f"{key_fingerprint(key)} without an endorsement by the pinned key; check with "
            f"{card.party}, then revoke the pin and pin the new card",
        )
    return True


def encode_card(card: PartnerCard) -> bytes:
    return _card_encoder.encode(card) + b"\n"


def check_card(card: PartnerCard, location: str) -> PartnerCard:
    """Refuse a card whose parts do not agree (party, CA, key, fingerprints)."""
    if not is_party(card.party):
        raise PartnerError(location, f"{card.party!r} is not an ISO 3166-1 alpha-3 party code")
    check_url(card.url, location)
    ca_party = _ca_party(card.ca_certificate, location)
    if ca_party != card.party:
        raise PartnerError(
            location, f"the CA certificate is for {ca_party}, the card for {card.party}"
        )
    try:
        key = public_key_from_b64(card.signing_key)
    except VerificationError as error:
        raise PartnerError(location, f"signing_key: {error.reason}") from None
    ca_fingerprint = certificate_fingerprint(card.ca_certificate.encode("ascii"))
    if card.ca_fingerprint and card.ca_fingerprint != ca_fingerprint:
        raise PartnerError(location, "ca_fingerprint does not match the CA certificate")
    if card.key_fingerprint and card.key_fingerprint != key_fingerprint(key):
        raise PartnerError(location, "key_fingerprint does not match the signing key")
    if card.previous_keys:
        try:
            first = public_key_from_b64(card.previous_keys[0].key)
            reached = follow_endorsements(card.party, card.previous_keys, first, location)
        except (IdentityError, VerificationError) as error:
            raise PartnerError(location, f"previous_keys: {error}") from None
        if reached != key:
            raise PartnerError(location, "previous_keys do not lead to the signing key")
    return card


def read_card(data: bytes, location: str) -> PartnerCard:
    """Decode and check a card (JSON)."""
    try:
        card = _card_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise PartnerError(location, f"not a partner card: {error}") from None
    return check_card(card, location)


def card_path(directory: Path, party: str) -> Path:
    return directory / PARTNERS_DIR / f"{party}.json"


def store_card(directory: Path, card: PartnerCard) -> Path:
    """Write a pinned card (replacing an earlier card of the same party)."""
    path = card_path(directory, card.party)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.new")
    staging.write_bytes(encode_card(card))
    os.replace(staging, path)
    return path


def load_partner(directory: Path, party: str, config: PartnerConfig) -> Partner:
    path = card_path(directory, party)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PartnerError(
            f"partners.{party}", f"no pinned card at {path}; run 'kuroshio partner add CARD'"
        ) from None
    card = read_card(data, str(path))
    if card.party != party:
        raise PartnerError(str(path), f"card is for {card.party}, config section for {party}")
    return Partner(
        party=party,
        node=card.node,
        url=check_url(config.url, f"partners.{party}.url"),
        ca_pem=card.ca_certificate.encode("ascii"),
        signing_key=public_key_from_b64(card.signing_key),
        previous_keys=tuple(public_key_from_b64(e.key) for e in reversed(card.previous_keys)),
    )


def load_partners(directory: Path, configs: Mapping[str, PartnerConfig]) -> dict[str, Partner]:
    """Every partner pinned in the config, resolved against its stored card."""
    return {party: load_partner(directory, party, config) for party, config in configs.items()}


__all__ = [
    "Partner",
    "PartnerCard",
    "PartnerConfig",
    "PartnerError",
    "card_path",
    "check_card",
    "check_successor",
    "encode_card",
    "load_partners",
    "make_card",
    "read_card",
    "store_card",
]
