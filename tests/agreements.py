"""Release agreements for tests: the TOML text of a simple agreement, signed by real node keys and
installed as a node installs it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from kuroshio.node import Node
from kuroshio.policy.agreement import EnforcedAgreement

RELEASE_AIR_SEA = 'action = "release"\nmatch = { kind = ["air", "sea"], tlp_at_most = "AMBER" }\n'
"""A rule body (after its id): air and sea reports up to TLP:AMBER, as observed."""


def agreement_text(
    parties: Sequence[str],
    directions: Mapping[tuple[str, str], str | Sequence[str]] | None = None,
    *,
    agreement_id: str = "test-exchange",
    version: int = 1,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    extra: str = "",
) -> str:
    """An agreement between ``parties``. ``directions`` maps (from, to) to rule bodies (TOML after
    the rule's id, one string per rule); by default every pair gets :data:`RELEASE_AIR_SEA`."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = valid_from or now - dt.timedelta(days=1)
    end = valid_until or now + dt.timedelta(days=30)
    if directions is None:
        directions = {(a, b): RELEASE_AIR_SEA for a in parties for b in parties if a != b}
    lines = [
        f'id = "{agreement_id}"',
        f"version = {version}",
        "parties = [" + ", ".join(f'"{p}"' for p in parties) + "]",
        f"valid_from = {start:%Y-%m-%dT%H:%M:%SZ}",
        f"valid_until = {end:%Y-%m-%dT%H:%M:%SZ}",
        extra,
    ]
    for (sender, recipient), rules in directions.items():
        bodies = [rules] if isinstance(rules, str) else list(rules)
        lines += ["[[direction]]", f'from = "{sender}"', f'to = ["{recipient}"]']
        for number, body in enumerate(bodies, start=1):
            rule_id = f"{sender}-{recipient}-{number}".lower()
            lines += ["[[direction.rule]]", f'id = "{rule_id}"', body]
    return "\n".join(lines) + "\n"


def sign(text: str, nodes: Sequence[Node]) -> str:
    """``text`` signed by each node's key."""
    for node in nodes:
        text = node.sign_agreement_text(text)
    return text


def install(text: str, nodes: Sequence[Node], folder: Path) -> EnforcedAgreement:
    """Write the (signed) text to ``folder`` and install it on every node."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"agreement-{abs(hash(text)) % 10**8}.toml"
    path.write_text(text, encoding="utf-8")
    enforced: EnforcedAgreement | None = None
    for node in nodes:
        enforced, _ = node.install_agreement(path)
    assert enforced is not None
    return enforced


def agree(nodes: Sequence[Node], folder: Path, text: str | None = None) -> EnforcedAgreement:
    """Every node signs ``text`` (default: air and sea both ways) and installs it."""
    return install(sign(text or agreement_text([n.party for n in nodes]), nodes), nodes, folder)
