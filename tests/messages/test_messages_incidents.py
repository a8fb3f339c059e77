"""Search-and-rescue incidents between two coast-guard nodes, on both stores: shared under a
civil agreement with no exchange agreement at all, worked jointly (assets, sitreps), closed with
a final report, audited; a civil agreement never releases an observation, and the observation
exchange never carries an incident."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from test_messages_dialogue import _deliver_all, _pair

from agreements import agreement_text
from kuroshio.errors import MessageError
from kuroshio.exchange import outbox
from kuroshio.messages import dialogue
from kuroshio.messages.incident import Asset, Change, Incident
from kuroshio.model import Marking, Platform, Point, Polygon
from kuroshio.node import Node
from kuroshio.policy import decide, parse_agreement
from kuroshio.policy.decide import Withheld
from kuroshio.store import ObservationFilter
from observations import observation

CIVIL = agreement_text(["TWN", "JPN"], {}, agreement_id="cg-sar", extra='scope = "civil"')
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
BOX = Polygon(
    coordinates=(((124.0, 24.2), (124.4, 24.2), (124.4, 24.5), (124.0, 24.5), (124.0, 24.2)),)
)


@pytest.fixture
def coast_guards(tmp_path: Path, backend: str) -> tuple[Node, Node]:
    return _pair(tmp_path, CIVIL)


def _incident(twn: Node) -> Incident:
    return Incident(
        id="TWN:sar:1",
        opened_by="TWN",
        updated_by="TWN",
        updated_at=NOW,
        shared_with=("JPN",),
        kind="vessel_in_distress",
        title="Fishing vessel taking water south of Ishigaki",
        datum=Point(coordinates=(124.2, 24.3)),
        datum_at=NOW - dt.timedelta(minutes=40),
        search_areas=(BOX,),
        assets=(Asset(party="TWN", name="CGA Yilan", type="patrol vessel"),),
    )


def test_an_incident_is_worked_jointly_and_closed(coast_guards: tuple[Node, Node]) -> None:
    twn, jpn = coast_guards
    twn.share_incident(_incident(twn))
    _deliver_all(twn, jpn)
    with jpn.store.transaction() as tx:
        [held] = dialogue.incidents(tx)
    assert held == _incident(twn)

    jpn.update_incident(
        "TWN:sar:1",
        Change(
            sitrep="JCG Hateruma on scene 0520Z; two persons in the water sighted",
            assets=(Asset(party="JPN", name="JCG Hateruma", type="patrol vessel"),),
        ),
    )
    _deliver_all(jpn, twn)
    with twn.store.transaction() as tx:
        updated = dialogue.incident(tx, "TWN:sar:1")
    assert updated.version == 2 and [a.party for a in updated.assets] == ["TWN", "JPN"]
    assert updated.sitreps[0].by == "JPN"

    with pytest.raises(MessageError, match="closing an incident takes a final report"):
        twn.update_incident("TWN:sar:1", Change(status="closed"))
    twn.update_incident(
        "TWN:sar:1", Change(status="closed", final_report="Eleven crew recovered alive.")
    )
    _deliver_all(twn, jpn)
    with jpn.store.transaction() as tx:
        closed = dialogue.incident(tx, "TWN:sar:1")
    assert (closed.version, closed.status) == (3, "closed")
    with pytest.raises(MessageError, match="is closed"):
        jpn.update_incident("TWN:sar:1", Change(sitrep="late"))
    subjects = [e.subject for e in twn.audit.entries("incident")]
    assert subjects == [
        "open TWN:sar:1 v1",
        "receive TWN:sar:1 v2",
        "closed TWN:sar:1 v3",
    ]


def test_a_civil_agreement_never_releases_observations(coast_guards: tuple[Node, Node]) -> None:
    twn, jpn = coast_guards
    military = observation(
        1,
        kind="sea",
        platform=Platform(type="Type 055", platform_class="destroyer", service="PLAN"),
        marking=Marking(tlp="CLEAR", releasable_to=("JPN",)),
    )
    twn.ingest([military])
    with twn.store.transaction() as tx:
        assert outbox.pending_count(tx, "JPN", limit=10) == 0
    civil = twn.civil_agreement_for("JPN", NOW)
    assert civil is not None and twn.agreement_for("JPN", NOW) is None
    decision = decide(military, civil, "JPN", None, NOW, own_party="TWN")
    assert isinstance(decision, Withheld)
    assert "civil agreement: it carries incidents, never observations" in decision.reason
    twn.share_incident(_incident(twn))
    _deliver_all(twn, jpn)
    assert list(jpn.store.iter_query(ObservationFilter())) == []
    with pytest.raises(MessageError, match="no agreement with JPN is in force"):
        twn.send_draft(dialogue.Draft(recipient="JPN", subject="A security question"))


def test_the_exchange_agreement_never_carries_incidents(tmp_path: Path, backend: str) -> None:
    twn, _ = _pair(tmp_path)  # the observation exchange only
    with pytest.raises(MessageError, match="no civil agreement with JPN is in force"):
        twn.share_incident(_incident(twn))
    with twn.store.transaction() as tx:
        assert dialogue.incidents(tx) == []


def test_the_guide_s_civil_agreement_reads_as_civil() -> None:
    guide = Path(__file__).resolve().parents[2] / "docs" / "agreements.md"
    section = guide.read_text(encoding="utf-8").split("## Civil agreements")[1]
    example = section.split("```toml\n")[1].split("```")[0]
    parsed = parse_agreement(example, source="docs/agreements.md")
    assert parsed.warnings == () and parsed.agreement.is_civil
    assert parsed.agreement.parties == ("JPN", "TWN")
