"""``/api/messages`` over HTTP against a real server: a liaison sends and acknowledges, a viewer
reads; refusals name the cause; the routes are in the OpenAPI spec."""

from __future__ import annotations

from pathlib import Path

from test_messages_dialogue import _deliver, _deliver_all
from test_messages_incidents import CIVIL

from agreements import agree
from api_server import serving
from kuroshio.node import init_node, open_node
from pinning import pin


def test_send_list_show_and_ack_over_http(tmp_path: Path) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements")
    with serving(twn) as http:
        sent = http.post(
            "/api/messages",
            json={
                "recipient": "JPN",
                "kind": "alert",
                "precedence": "flash",
                "subject": "Carrier group through the Miyako gate",
                "area": [[125.0, 24.5], [126.0, 24.5], [126.0, 25.5], [125.0, 25.5]],
            },
        )
        assert sent.status_code == 200, sent.text
        message = sent.json()
        assert message["attachments"]["area"]["coordinates"][0][-1] == [125.0, 24.5]
        [listed] = http.get("/api/messages").json()
        assert (listed["state"], listed["direction"]) == ("queued", "out")
        assert http.get(f"/api/messages/{message['id']}").json()["message"] == message
        refused = http.post("/api/messages", json={"recipient": "KOR", "subject": "x"})
        assert refused.status_code == 422
        assert "no agreement with KOR is in force" in refused.json()["detail"]
        spec = http.get("/openapi.json").json()
        assert {"/api/messages", "/api/messages/{message_id}/ack"} <= set(spec["paths"])
    _deliver(twn, jpn)
    with serving(jpn) as http:
        acked = http.post(f"/api/messages/{message['id']}/ack", json={"state": "acked"})
        assert acked.status_code == 200 and acked.json()["state"] == "acked"
    _deliver(jpn, twn)
    with serving(twn) as http:
        assert http.get(f"/api/messages/{message['id']}").json()["state"] == "acked"


def test_requests_and_incidents_over_http(tmp_path: Path) -> None:
    with init_node(tmp_path / "twn", "TWN") as twn, init_node(tmp_path / "jpn", "JPN") as jpn:
        pin(twn, jpn)
        pin(jpn, twn)
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements")
    agree([twn, jpn], tmp_path / "civil", CIVIL)
    with serving(jpn) as http:
        asked = http.post(
            "/api/requests",
            json={
                "recipient": "TWN",
                "platform_class": ["carrier"],
                "near": {"place": "Yonaguni", "lon": 123.0, "lat": 24.47, "within_km": 200},
            },
        )
        assert asked.status_code == 200, asked.text
        assert asked.json()["request"]["near"]["place"] == "Yonaguni"
        opened = http.post(
            "/api/incidents",
            json={
                "kind": "person_overboard",
                "title": "Crew member overboard",
                "datum": [123.2, 24.6],
                "share_with": ["TWN"],
                "search_areas": [[[123.1, 24.5], [123.3, 24.5], [123.3, 24.7]]],
                "assets": [["JCG Yonakuni", "patrol vessel"]],
            },
        )
        assert opened.status_code == 200, opened.text
        incident = opened.json()
        assert incident["search_areas"][0]["coordinates"][0][-1] == [123.1, 24.5]
    _deliver_all(jpn, twn)
    with serving(twn) as http:
        [held] = http.get("/api/requests").json()
        assert held["owner"] == "JPN" and held["cancelled_at"] is None
        updated = http.post(
            f"/api/incidents/{incident['id']}",
            json={"sitrep": "Helicopter on scene", "assets": [["CGA helicopter", "AS365"]]},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["version"] == 2
        refused = http.post(f"/api/incidents/{incident['id']}", json={"status": "closed"})
        assert refused.status_code == 422
        assert "closing an incident takes a final report" in refused.json()["detail"]
    _deliver_all(twn, jpn)
    with serving(jpn) as http:
        shown = http.get(f"/api/incidents/{incident['id']}").json()
        assert [a["party"] for a in shown["assets"]] == ["JPN", "TWN"]
        cancelled = http.post(f"/api/requests/{asked.json()['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["cancels"] == asked.json()["id"]
