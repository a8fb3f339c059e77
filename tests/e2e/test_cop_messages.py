"""The Messages panel of the picture in a real browser (Debian's chromium driven by Playwright)
against real ``kuroshio serve`` nodes: threads with their precedence, the unread and
unacknowledged counts, the badge on the tab, and what each message has attached."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from federation_nodes import ServedNode, agree, wait_until
from test_cop_browser import ARTIFACTS, LOAD_TIMEOUT_MS, PASSWORD, WATCH, _log_in, browser

from agreements import agreement_text
from cli_run import run

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the fixture, shared with the picture's other browser tests


def _send(node: ServedNode, *args: str) -> dict[str, Any]:
    sent: dict[str, Any] = json.loads(
        run("msg", "send", "--node", node.directory, "--json", *args, check=True).stdout
    )
    return sent


@pytest.fixture(scope="module")
def talking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedNode, ServedNode]]:
    root: Path = tmp_path_factory.mktemp("cop-messages")
    twn, jpn = ServedNode(root, "TWN"), ServedNode(root, "JPN")
    twn.pin(jpn)
    jpn.pin(twn)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]))
    run("user", "add", WATCH, "--role", "viewer", "--password-stdin", "-n", twn.directory,
        stdin=f"{PASSWORD}\n".encode(), check=True)  # fmt: skip
    twn.start()
    jpn.start()
    try:
        yield twn, jpn
    finally:
        twn.stop()
        jpn.stop()


def test_threads_counts_and_attachments_show_in_the_messages_panel(
    browser: Any, talking: tuple[ServedNode, ServedNode]
) -> None:
    twn, jpn = talking
    rfi = _send(twn, "--to", "JPN", "--kind", "rfi", "--precedence", "flash",
                "--subject", "Carrier group launching", "--track", "demo:carrier-group",
                "--area", "123,24;124,24;124,25")  # fmt: skip
    asked = _send(jpn, "--to", "TWN", "--kind", "rfi", "--subject", "Survey ship near Yonaguni")

    def has(node: ServedNode, message_id: str) -> bool:
        return bool(node.query("SELECT 1 FROM messages WHERE id = ?", (message_id,)))

    wait_until(lambda: has(twn, asked["id"]), "JPN's request at TWN")
    wait_until(lambda: has(jpn, rfi["id"]), "TWN's flash at JPN")

    context = browser.new_context(viewport={"width": 1400, "height": 850}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        _log_in(page, twn)
        page.wait_for_selector("body[data-ready=true]", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector("#messages-badge:not([hidden])", timeout=LOAD_TIMEOUT_MS)
        assert page.inner_text("#messages-badge") == "1"  # JPN's request, not yet read
        page.click("#tabs [data-tab=messages]")
        page.wait_for_selector("#messages-counts", timeout=LOAD_TIMEOUT_MS)
        counts = page.locator("#messages-counts")
        assert counts.get_attribute("data-unread") == "1"
        assert counts.get_attribute("data-unacknowledged") == "1"  # TWN's flash
        flash = page.locator(f"[data-thread='{rfi['id']}']")
        assert "precedence-flash" in (flash.get_attribute("class") or "")
        assert "Carrier group launching — JPN (flash)" in flash.inner_text()
        assert "demo:carrier-group, area" in flash.inner_text()
        incoming = page.locator(f"[data-id='{asked['id']}']")
        assert "← JPN rfi" in incoming.inner_text() and "delivered" in incoming.inner_text()
        page.screenshot(path=str(ARTIFACTS / "messages.png"))
    finally:
        context.close()
    assert errors == [], f"the page threw: {errors}"


def test_alerts_are_announced_attachments_shown_on_the_map_and_incidents_drawn(
    browser: Any, talking: tuple[ServedNode, ServedNode]
) -> None:
    twn, jpn = talking
    about = _send(twn, "--to", "JPN", "--kind", "note", "--subject", "Look at this box",
                  "--area", "122.5,23.5;123.5,23.5;123.5,24.5;122.5,24.5")  # fmt: skip
    opened = json.loads(
        run("incident", "open", "--node", twn.directory, "--json", "--kind", "vessel_in_distress",
            "--title", "Fishing boat taking water south of Ishigaki", "--datum", "124.15,24.1",
            "--search-area", "124.0,24.0;124.3,24.0;124.3,24.2;124.0,24.2",
            check=True).stdout
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 1400, "height": 850}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        _log_in(page, twn)
        page.wait_for_selector("body[data-ready=true]", timeout=LOAD_TIMEOUT_MS)

        # The incidents layer: the datum and the search area, where the incident says.
        page.evaluate("() => window.cop.map.jumpTo({center: [124.15, 24.1], zoom: 9})")
        page.evaluate("() => window.cop.idle()")
        drawn = page.evaluate("() => window.cop.rendered(['incident-datum', 'incident-areas'])")
        assert {(d["layer"], d["id"]) for d in drawn} == {
            ("incident-datum", opened["id"]),
            ("incident-areas", opened["id"]),
        }, drawn

        # An alert sent while the page is open is announced, naming its sender.
        alert = _send(jpn, "--to", "TWN", "--kind", "alert", "--precedence", "immediate",
                      "--subject", "Two destroyers heading for Yonaguni")  # fmt: skip
        toast = page.wait_for_selector(
            ".toast.event:has-text('Two destroyers heading for Yonaguni')", timeout=LOAD_TIMEOUT_MS
        )
        assert "Alert from JPN" in toast.inner_text()
        assert alert["id"]

        # A message's attachments are drawn on the map and brought into view.
        page.evaluate("() => window.cop.map.jumpTo({center: [119.0, 21.0], zoom: 5})")
        page.click("#tabs [data-tab=messages]")
        thread = page.locator(f"[data-thread='{about['id']}']")
        thread.locator("button.show-attached").click()
        page.evaluate("() => window.cop.idle()")
        centre = page.evaluate("() => window.cop.map.getCenter().toArray()")
        assert abs(centre[0] - 123.0) < 0.2 and abs(centre[1] - 24.0) < 0.2, centre
        assert page.evaluate("() => window.cop.rendered(['attached-areas']).length") > 0
        page.screenshot(path=str(ARTIFACTS / "messages-attached-and-incident.png"))
    finally:
        context.close()
    assert errors == [], f"the page threw: {errors}"
