"""Agreements in words: a rule's match and transforms described for people, and the text of a
new agreement to edit (:func:`draft_text`).

It decides nothing and reads no files; the command line and the demo print what it returns.
"""

from __future__ import annotations

import datetime as dt

from kuroshio.policy.agreement import Match, Transforms, parse_agreement


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def describe_match(match: Match) -> str:
    """A rule's match in a few words (``everything`` when it has no conditions)."""
    words = []
    for label, values in (
        ("kind", match.kind),
        ("class", match.platform_class),
        ("type", match.platform_type),
        ("origin", match.origin),
    ):
        if values:
            words.append(f"{label} {', '.join(values)}")
    areas = list(match.area) + (["polygon"] if match.polygon else [])
    if areas:
        verb = "within" if match.area_test == "within" else "in/through"
        words.append(f"{verb} {', '.join(areas)}")
    if match.tlp_at_most:
        words.append(f"TLP ≤ {match.tlp_at_most}")
    if match.min_age_s is not None:
        words.append(f"age ≥ {_duration(match.min_age_s)}")
    if match.max_age_s is not None:
        words.append(f"age ≤ {_duration(match.max_age_s)}")
    return "; ".join(words) or "everything"


def describe_transforms(transform: Transforms) -> str:
    words = []
    if transform.coarsen_km is not None:
        words.append(f"coarsen {transform.coarsen_km:g} km")
    if transform.delay_s:
        words.append(f"delay {_duration(transform.delay_s)}")
    if transform.drop:
        words.append("drop " + ", ".join(transform.drop))
    if transform.generalise_type:
        words.append("type → class")
    marking = transform.marking
    if marking is not None:
        parts = []
        if marking.tlp:
            parts.append(f"TLP:{marking.tlp}")
        if marking.releasable_to is not None:
            parts.append("releasable to " + (", ".join(marking.releasable_to) or "any"))
        if marking.rerelease is False:
            parts.append("no re-release")
        elif marking.rerelease or marking.rerelease_to:
            parts.append("re-release to " + (", ".join(marking.rerelease_to or ()) or "any"))
        if marking.max_hops is not None:
            parts.append(f"{marking.max_hops} further hop(s)")
        words.append("mark " + " ".join(parts))
    return "; ".join(words) or "as is"


_DRAFT_HEADER = """\
# Release agreement {id}, version {version}, between {parties}.
#
# Each [[direction]] lists what its "from" party releases to the parties in "to". Rules apply in
# order: the FIRST rule whose match fits an observation decides; if none fits, the observation is
# withheld (default deny). Positions are coarsened to a lat/lon grid of about N km; delays count
# from the latest moment an observation describes. See docs/agreements.md.
#
# When the text is agreed, every party signs it with its node key:
#     kuroshio agreement sign {file} --node <node dir>
# Any change afterwards needs a new version number and new signatures from every party.

id = "{id}"
version = {version}
title = "{title}"
parties = [{party_list}]
valid_from = {valid_from}
valid_until = {valid_until}

# What each party expects back over a rolling window, and what happens when the partner falls
# short: "warn", "delay" (add delay_s), "coarsen" (to coarsen_km) or "suspend" (suspend_kind /
# suspend_class are withheld).
[reciprocity]
window_days = 30
min_ratio = 0.5
measure = "items"
min_given = 50
on_shortfall = "warn"
"""

_DRAFT_DIRECTION = """
[[direction]]
from = "{sender}"
to = ["{recipient}"]

[[direction.rule]]
id = "{prefix}-submarines"
action = "withhold"
reason = "submarine contacts stay national"
match = {{ platform_class = ["submarine"] }}

[[direction.rule]]
id = "{prefix}-air-sea"
action = "release"
[direction.rule.match]
kind = ["air", "sea"]
tlp_at_most = "AMBER"       # AMBER+STRICT and RED items fall through to "withhold"
max_age_s = 604800          # a week
[direction.rule.transform]
coarsen_km = 10
delay_s = 1800
drop = ["remarks", "provenance.record"]
[direction.rule.transform.marking]
tlp = "AMBER"
rerelease = false
"""


def draft_text(
    agreement_id: str,
    parties: list[str],
    *,
    valid_from: dt.datetime,
    days: int,
    file_name: str,
) -> str:
    """The text of a new agreement: header, reciprocity clause, a conservative rule pair per
    direction. It is checked before it is returned."""
    text = _DRAFT_HEADER.format(
        id=agreement_id,
        version=1,
        parties=", ".join(parties),
        file=file_name,
        title=f"{' – '.join(parties)} observation exchange",
        party_list=", ".join(f'"{p}"' for p in parties),
        valid_from=valid_from.strftime("%Y-%m-%dT%H:%M:%SZ"),
        valid_until=(valid_from + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    for sender in parties:
        for recipient in parties:
            if sender != recipient:
                text += _DRAFT_DIRECTION.format(
                    sender=sender,
                    recipient=recipient,
                    prefix=f"{sender}-{recipient}".lower(),
                )
    parse_agreement(text, source=file_name)
    return text


__all__ = ["describe_match", "describe_transforms", "draft_text"]
