"""The agreement book: a bad file never displaces the agreement in force."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from policy_cases import NOW, pinned, signed_text, twn_jpn_text

from kuroshio.errors import AgreementError
from kuroshio.policy.book import AgreementBook


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def book_with_v1(tmp_path: Path) -> AgreementBook:
    book = AgreementBook("TWN", pinned(), directory=tmp_path / "agreements")
    book.try_install(
        write(tmp_path, "v1.toml", signed_text(twn_jpn_text(), ["TWN", "JPN"])), now=NOW
    )
    return book


def in_force_version(book: AgreementBook, now: dt.datetime = NOW) -> int | None:
    enforced = book.in_force("JPN", now)
    return None if enforced is None else enforced.version


def test_an_installed_agreement_is_in_force_for_its_partner(tmp_path: Path) -> None:
    book = book_with_v1(tmp_path)
    assert in_force_version(book) == 1
    assert book.partners(NOW) == ("JPN",)
    assert book.in_force("USA", NOW) is None
    assert (tmp_path / "agreements" / "twn-jpn.v1.toml").is_file()


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        (
            "syntax",
            signed_text(twn_jpn_text(version=2), ["TWN", "JPN"]).replace("]\n", "\n", 1),
            "TOML",
        ),
        (
            "unknown zone",
            twn_jpn_text(version=2).replace('area = ["twn-adiz"]', 'area = ["nowhere"]'),
            "unknown zone",
        ),
        (
            "contradiction",
            twn_jpn_text(version=2).replace(
                'id = "jpn-everything"\naction = "release"',
                'id = "jpn-everything"\naction = "release"\n\n[[direction.rule]]\n'
                'id = "jpn-nothing"\naction = "withhold"',
            ),
            "one releases and the other withholds",
        ),
        ("unsigned", twn_jpn_text(version=2), "not signed"),
        ("one signature", signed_text(twn_jpn_text(version=2), ["TWN"]), "JPN: not signed"),
        (
            "tampered",
            signed_text(twn_jpn_text(version=2), ["TWN", "JPN"]).replace(
                "coarsen_km = 10", "coarsen_km = 0.5"
            ),
            "does not match",
        ),
        (
            "expired",
            signed_text(
                twn_jpn_text(version=2, valid_until="2024-05-01T00:00:00Z"), ["TWN", "JPN"]
            ),
            "expired",
        ),
        (
            "older version",
            signed_text(twn_jpn_text(version=1, coarsen_km=2), ["TWN", "JPN"]),
            "different content",
        ),
    ],
)
def test_a_bad_file_is_refused_and_the_previous_version_stays_in_force(
    tmp_path: Path, name: str, text: str, words: str
) -> None:
    book = book_with_v1(tmp_path)
    with pytest.raises(AgreementError) as caught:
        book.try_install(write(tmp_path, "new.toml", text), now=NOW)
    assert words in str(caught.value)
    assert str(tmp_path / "new.toml") in str(caught.value)
    assert in_force_version(book) == 1
    assert [e.version for e in book.installed()] == [1]
    assert sorted(p.name for p in (tmp_path / "agreements").iterdir()) == ["twn-jpn.v1.toml"]


def test_a_new_signed_version_replaces_the_old_one(tmp_path: Path) -> None:
    book = book_with_v1(tmp_path)
    v2 = signed_text(twn_jpn_text(version=2, coarsen_km=25), ["TWN", "JPN"])
    book.try_install(write(tmp_path, "v2.toml", v2), now=NOW)
    enforced = book.in_force("JPN", NOW)
    assert enforced is not None and enforced.version == 2
    assert enforced.agreement.rules("TWN", "JPN")[1].transform.coarsen_km == 25.0


def test_rolling_back_to_an_older_version_is_refused(tmp_path: Path) -> None:
    book = book_with_v1(tmp_path)
    book.try_install(
        write(tmp_path, "v3.toml", signed_text(twn_jpn_text(version=3), ["TWN", "JPN"])), now=NOW
    )
    with pytest.raises(AgreementError, match="older than the installed version 3"):
        book.try_install(
            write(tmp_path, "v2.toml", signed_text(twn_jpn_text(version=2), ["TWN", "JPN"])),
            now=NOW,
        )


def test_installing_the_same_version_again_changes_nothing(tmp_path: Path) -> None:
    book = book_with_v1(tmp_path)
    again = book.try_install(tmp_path / "v1.toml", now=NOW)
    assert again is book.in_force("JPN", NOW)


def test_a_version_that_starts_later_waits_and_then_takes_over(tmp_path: Path) -> None:
    book = book_with_v1(tmp_path)
    later = twn_jpn_text(version=2).replace("valid_from = 2024-01-01", "valid_from = 2024-07-01")
    book.try_install(write(tmp_path, "v2.toml", signed_text(later, ["TWN", "JPN"])), now=NOW)
    assert in_force_version(book, NOW) == 1
    assert in_force_version(book, dt.datetime(2024, 7, 2, tzinfo=dt.UTC)) == 2


def test_after_it_expires_no_agreement_is_in_force(tmp_path: Path) -> None:
    book = book_with_v1(tmp_path)
    assert in_force_version(book, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) is None


def test_a_node_that_is_not_a_party_refuses_the_agreement(tmp_path: Path) -> None:
    book = AgreementBook("USA", pinned())
    with pytest.raises(AgreementError, match="USA is not a party"):
        book.install_text(signed_text(twn_jpn_text(), ["TWN", "JPN"]), now=NOW)


def test_a_restarted_node_finds_its_installed_agreements(tmp_path: Path) -> None:
    book_with_v1(tmp_path)
    write(tmp_path / "agreements", "junk.toml", "this is not toml")
    restarted = AgreementBook("TWN", pinned(), directory=tmp_path / "agreements")
    problems = restarted.load(now=NOW)
    assert in_force_version(restarted) == 1
    assert [Path(p.file).name for p in problems] == ["junk.toml"]


def test_a_changed_pinned_key_makes_the_stored_agreement_unenforceable(tmp_path: Path) -> None:
    book_with_v1(tmp_path)
    keys = pinned()
    keys["JPN"] = keys["USA"]
    restarted = AgreementBook("TWN", keys, directory=tmp_path / "agreements")
    problems = restarted.load(now=NOW)
    assert restarted.in_force("JPN", NOW) is None
    assert "pinned for JPN" in problems[0].reason
