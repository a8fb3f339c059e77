"""Pinning nodes to each other in process, as `kuroshio partner add` does with a card."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from kuroshio.node import Node, init_node, open_node, save_config
from kuroshio.partners import PartnerConfig, make_card, store_card


def pin(node: Node, other: Node) -> None:
    """``node`` pins ``other``: its card stored, its URL in the config."""
    card = make_card(
        other.party,
        other.config.node.name,
        other.config.federation.url(),
        other.identity.ca_certificate_pem,
        other.identity.public_key_b64,
        other.identity.endorsements,
    )
    store_card(node.directory, card)
    node.config.partners[other.party] = PartnerConfig(url=card.url)
    save_config(node.directory, node.config)


def pin_all(nodes: Iterable[Node], *, unpinned: Iterable[tuple[str, str]] = ()) -> None:
    """Every node pins every other, but the (node, other) party pairs listed."""
    nodes = list(nodes)
    skipped = set(unpinned)
    for node in nodes:
        for other in nodes:
            if other is not node and (node.party, other.party) not in skipped:
                pin(node, other)


def pinned_nodes(folder: Path, parties: Sequence[str]) -> list[Node]:
    """A node of each of ``parties`` made in ``folder`` (a directory each, named after the
    party), each pinning every other, and opened again with its partners loaded."""
    made = [init_node(folder / party.lower(), party) for party in parties]
    pin_all(made)
    for node in made:
        node.close()
    return [open_node(folder / party.lower()) for party in parties]
