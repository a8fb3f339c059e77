"""JSO press-release text → activities: scored against a hand-read truth, and by rule."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jso_releases import JOINT, LISTED, NOTICE, REISSUE
from kuroshio.ingest.jso_press_text import (
    GEO_GATE_IDS,
    PressActivity,
    PressRelease,
    parse_press_release,
    straits_in,
    transits_in,
)

HERE = Path(__file__).parent
TRUTHS: dict[str, tuple[str, dict[str, Any]]] = {
    # truth file → (texts it covers, its releases); each written by reading the releases
    "dev": (
        "pla-dashboard/japan_mod_texts_dev.json",
        json.loads((HERE / "jso_press_truth.json").read_text("utf-8"))["releases"],
    ),
    "dev2": (
        "pla-dashboard/japan_mod_texts_dev2.json",
        json.loads((HERE / "jso_press_truth_dev2.json").read_text("utf-8"))["releases"],
    ),
}
TRUTH = TRUTHS["dev"][1]

Tuple = tuple[str, str | None, int | None, str | None]


def _parsed(shared_data: Path, which: str) -> dict[str, PressRelease]:
    file_name, truth = TRUTHS[which]
    texts = json.loads((shared_data / file_name).read_text("utf-8"))["texts"]
    assert set(texts) == set(truth), "the truth file covers exactly the texts"
    return {name: parse_press_release(t["text"], source_name=name) for name, t in texts.items()}


@pytest.fixture(scope="module")
def releases(shared_data: Path) -> dict[str, PressRelease]:
    return _parsed(shared_data, "dev")


@pytest.fixture(scope="module", params=sorted(TRUTHS))
def scored(
    request: pytest.FixtureRequest, shared_data: Path
) -> tuple[str, dict[str, PressRelease]]:
    return request.param, _parsed(shared_data, request.param)


def _tuples(activities: tuple[PressActivity, ...]) -> list[Tuple]:
    return [(a.date.isoformat(), a.platform, a.count, a.strait) for a in activities]


def _score(
    releases: dict[str, PressRelease], field: str, truth: dict[str, Any] = TRUTH
) -> tuple[float, float, list[str]]:
    matched = found_total = truth_total = 0
    differences = []
    for name, release in sorted(releases.items()):
        found = _tuples(getattr(release, field))
        expected = [tuple(t) for t in truth[name][field]]
        remaining = list(expected)
        for item in found:
            if item in remaining:
                remaining.remove(item)
                matched += 1
        found_total += len(found)
        truth_total += len(expected)
        extra = [item for item in found if item not in expected]
        if extra or remaining:
            differences.append(f"{name}: extra {extra}, missing {remaining}")
    precision = matched / found_total if found_total else 1.0
    recall = matched / truth_total if truth_total else 1.0
    return precision, recall, differences


def test_activities_match_the_hand_read_truth(
    scored: tuple[str, dict[str, PressRelease]],
) -> None:
    which, releases = scored
    precision, recall, differences = _score(releases, "activities", TRUTHS[which][1])
    message = f"{which}: precision {precision:.1%}, recall {recall:.1%}; " + "; ".join(differences)
    print(f"{which} activities: precision {precision:.1%}, recall {recall:.1%}")  # pytest -rP
    assert precision >= 0.98 and recall >= 0.98, message


def test_earlier_sightings_match_the_hand_read_truth(
    scored: tuple[str, dict[str, PressRelease]],
) -> None:
    which, releases = scored
    precision, recall, differences = _score(releases, "previously_reported", TRUTHS[which][1])
    message = f"{which}: precision {precision:.1%}, recall {recall:.1%}; " + "; ".join(differences)
    print(
        f"{which} earlier sightings: precision {precision:.1%}, recall {recall:.1%}"
    )  # pytest -rP
    assert precision >= 0.95 and recall >= 0.95, message


def test_dates_kinds_and_labels_match_the_truth(
    scored: tuple[str, dict[str, PressRelease]],
) -> None:
    which, releases = scored
    truth = TRUTHS[which][1]
    for name, release in releases.items():
        seen = (str(release.release_date), release.kind, release.reports_foreign_activity)
        expected = (
            truth[name]["release_date"],
            truth[name]["kind"],
            truth[name]["reports_foreign_activity"],
        )
        assert seen == expected, name
        assert release.unknown_labels == (), name


def test_unrelated_releases_give_no_activity(releases: dict[str, PressRelease]) -> None:
    unrelated = [name for name, truth in TRUTH.items() if truth["kind"] == "other"]
    # Cobra Gold, forest-fire relief, three anti-piracy notices, an exercise with India.
    assert len(unrelated) == 6
    for name in unrelated:
        release = releases[name]
        assert not release.reports_foreign_activity, name
        assert release.activities == () and release.previously_reported == (), name


def test_scramble_statistics_are_recognised_but_give_no_sightings(
    releases: dict[str, PressRelease],
) -> None:
    for name in ("p20260313_01.pdf", "p20260417_03.pdf", "p20260612_05.pdf"):
        release = releases[name]
        assert release.kind == "scramble_statistics" and release.reports_foreign_activity
        assert release.activities == ()


def test_one_release_in_full(releases: dict[str, PressRelease]) -> None:
    release = releases["p20260318_02.pdf"]
    assert release.title == "ロシア海軍艦艇の動向について"
    (activity,) = release.activities
    assert activity.date == dt.date(2026, 3, 17)
    assert activity.end_date == dt.date(2026, 3, 18)  # 17日（火）から18日（水）にかけて
    assert activity.time_of_day == "午後4時頃"
    assert (activity.platform, activity.platform_class) == ("Udaloy III", "destroyer")
    assert activity.label == "ウダロイⅢ級駆逐艦"  # as written, full-width numeral and all
    assert (activity.count, activity.nationality, activity.hull_numbers) == (1, "RUS", ("543",))
    assert activity.straits == ("tsushima",)
    assert "北東進" in activity.directions
    assert activity.areas == ("日本海",)
    assert activity.position is not None
    assert (activity.position.reference, activity.position.bearing) == ("対馬", "南西")
    assert activity.position.distance_km == 110
    # 令和７年１０月３日 in the same release is 2025; 令和８年 is 2026.
    earlier = [(a.date, a.end_date, a.strait) for a in release.previously_reported]
    assert earlier == [
        (dt.date(2025, 10, 3), None, "tsushima"),
        (dt.date(2025, 10, 5), dt.date(2025, 10, 6), "yonaguni-iriomote"),
        (dt.date(2026, 3, 15), None, "yonaguni-iriomote"),
    ]


def test_two_sightings_in_one_release_stay_apart(releases: dict[str, PressRelease]) -> None:
    release = releases["p20260810_03.pdf"]
    seen = [(a.date.day, a.platform, a.count, a.hull_numbers) for a in release.activities]
    assert seen == [
        (9, "Tarantul III", 4, ("916", "946", "971", "978")),
        (10, "Tarantul III", 2, ("921", "924")),
        (10, "Amga", 1, ()),
    ]


def test_aircraft_named_by_role_with_the_designation_in_brackets(
    releases: dict[str, PressRelease],
) -> None:
    (activity,) = releases["p20260727_03.pdf"].activities
    assert (activity.platform, activity.count, activity.nationality) == ("Il-20", 1, "RUS")
    assert activity.time_of_day == "午前から午後にかけて"
    assert activity.label == "情報収集機（ＩＬ－２０）"


# --- rules, on releases written the way JSO writes them -------------------------------------

AIRCRAFT_RELEASE = """令和７年１２月９日
統合幕僚監部
中国機及びロシア機の東シナ海及び太平洋における飛行について
令和７年１２月９日（火）午前から午後にかけて、中国のＨ－６爆撃機×２機及びロシアのＴｕ－９５爆撃
機×２機が、東シナ海から沖縄本島と宮古島との間を通過し、四国沖の太平洋まで共同飛行したことを確認した。
また、同日、中国のＪ－１６戦闘機×４機が、東シナ海から沖縄本島と宮古島との間を通過し、太平洋を往復
飛行したことを確認した。
これに対し、航空自衛隊南西航空方面隊等の戦闘機を緊急発進させ対応した。
"""


def test_aircraft_counts_nationalities_and_same_day() -> None:
    release = parse_press_release(AIRCRAFT_RELEASE, source_name="p20251209_01.pdf")
    assert _tuples(release.activities) == [
        ("2025-12-09", "H-6", 2, "miyako"),
        ("2025-12-09", "Tu-95", 2, "miyako"),
        ("2025-12-09", "J-16", 4, "miyako"),
    ]
    assert [a.nationality for a in release.activities] == ["CHN", "RUS", "CHN"]
    # The scramble is Japan's own action, not foreign activity.
    assert all(a.platform != "unidentified fighter" for a in release.activities)


def test_a_presumed_uav_is_a_uav_of_unknown_type() -> None:
    text = (
        "令和８年５月２日\n統合幕僚監部\n推定中国無人機の東シナ海及び太平洋における飛行について\n"
        "令和８年５月２日（土）、推定中国無人機×１機（推定）が、東シナ海から与那国島と台湾との間を"
        "通過し、太平洋を往復飛行したことを確認した。\n"
    )
    (activity,) = parse_press_release(text, source_name="x").activities
    assert (activity.platform, activity.platform_class) == ("unidentified UAV", "uav")
    assert (activity.count, activity.nationality, activity.strait) == (1, "CHN", "yonaguni")
    assert activity.presumed


def test_a_carrier_group_with_counts_hulls_and_ship_name() -> None:
    text = (
        "令和８年５月２７日\n統合幕僚監部\n中国海軍空母「遼寧」等の動向について\n"
        "令和８年５月２５日（月）午前９時頃、海上自衛隊は、宮古島（沖縄県）の北西約３００ｋｍの海域"
        "において、中国海軍クズネツォフ級空母「遼寧」（艦番号「１６」）、ルーヤンⅢ級ミサイル駆逐艦２"
        "隻（艦番号「１１８」及び「１２１」）及びフユ級高速戦闘支援艦（艦番号「９０５」）の計４隻が南"
        "東進するのを確認した。\nその後、２６日（火）、これらの艦艇が沖縄本島と宮古島との間の海域を南"
        "東進し、太平洋へ向けて航行したことを確認した。\n"
    )
    release = parse_press_release(text, source_name="x")
    assert _tuples(release.activities) == [
        ("2026-05-25", "Type 001", 1, "miyako"),
        ("2026-05-25", "Type 052D", 2, "miyako"),
        ("2026-05-25", "Type 901", 1, "miyako"),
    ]
    assert release.activities[1].hull_numbers == ("118", "121")
    assert all(a.end_date == dt.date(2026, 5, 26) for a in release.activities)


def test_russian_ships_through_the_northern_straits() -> None:
    text = (
        "令和７年７月２日\n統合幕僚監部\nロシア海軍艦艇の動向について\n"
        "令和７年６月３０日（月）午後３時頃、海上自衛隊は、宗谷岬（北海道）の北西約５０ｋｍの海域に"
        "おいて、東進するロシア海軍ステレグシチーⅡ級フリゲート１隻（艦番号「３３９」）を確認した。\n"
        "その後、当該艦艇は、７月１日（火）にかけて宗谷海峡を東進し、オホーツク海へ向けて航行した。\n"
        "また、同日、津軽海峡を西進するロシア海軍ウダロイⅠ級駆逐艦１隻を確認した。\n"
    )
    release = parse_press_release(text, source_name="x")
    assert release.unknown_labels == ()
    assert _tuples(release.activities) == [
        ("2025-06-30", "Steregushchiy", 1, "soya"),
        ("2025-06-30", "Udaloy I", 1, "tsugaru"),
    ]
    assert release.activities[0].hull_numbers == ("339",)
    assert release.activities[0].end_date == dt.date(2025, 7, 1)
    assert {a.nationality for a in release.activities} == {"RUS"}


def test_a_day_range_across_the_new_year_follows_the_weekdays() -> None:
    text = (
        "令和９年１月８日\n統合幕僚監部\nロシア海軍艦艇の動向について\n"
        "令和８年１２月３０日（水）午後１時頃、海上自衛隊は、対馬の北東約１００ｋｍの海域において、"
        "同海域を南西進するロシア海軍ウダロイⅠ級駆逐艦（艦番号「５６４」）を確認した。\n"
        "その後、５日（火）から７日（木）にかけて、当該艦艇が対馬海峡を南西進したことを確認した。\n"
    )
    (activity,) = parse_press_release(text, source_name="x").activities
    assert (activity.date, activity.end_date) == (dt.date(2026, 12, 30), dt.date(2027, 1, 7))
    assert activity.straits == ("tsushima",) and activity.directions == ("南西進", "南西進")


def test_an_unknown_type_is_reported_not_guessed() -> None:
    text = (
        "令和８年９月１日\n統合幕僚監部\nロシア海軍艦艇の動向について\n"
        "令和８年８月３１日（月）午前６時頃、海上自衛隊は、礼文島の西約４０ｋｍの海域において、"
        "ロシア海軍ナヌチュカ級ミサイル艇２隻（艦番号「４２３」及び「４５０」）を確認した。\n"
        "その後、これらの艦艇が宗谷海峡を東進したことを確認した。\n"
    )
    release = parse_press_release(text, source_name="x")
    assert release.unknown_labels == ("ナヌチュカ級ミサイル艇",)
    (activity,) = release.activities
    assert (activity.platform, activity.label, activity.count) == (
        None,
        "ナヌチュカ級ミサイル艇",
        2,
    )
    assert (activity.date, activity.strait) == (dt.date(2026, 8, 31), "soya")


@pytest.mark.parametrize(
    ("sentence", "gates"),
    [
        ("沖縄本島と宮古島との間の海域を北西進", ["miyako"]),
        ("宮古島・沖縄本島間を通過", ["miyako"]),
        ("沖縄本島と宮古島(沖縄県)との間", ["miyako"]),
        ("与那国島・台湾間を通過", ["yonaguni"]),
        ("与那国島(沖縄県)と西表島(沖縄県)との間の海域", ["yonaguni-iriomote"]),
        ("奄美大島(鹿児島県)と横当島の間の海域を北東進", ["tokara"]),
        ("大隅海峡を東進し、対馬海峡を北東進", ["osumi", "tsushima"]),
        ("津軽海峡を西進", ["tsugaru"]),
        ("宗谷海峡を東進", ["soya"]),
        ("久米島の南西の海域において反転", []),
    ],
)
def test_straits_named_become_gate_ids(sentence: str, gates: list[str]) -> None:
    assert straits_in(sentence) == gates


def test_gate_ids_point_at_zones_the_geography_draws() -> None:
    assert GEO_GATE_IDS["miyako"] == "gate-miyako"
    assert all(zone.startswith("gate-") for zone in GEO_GATE_IDS.values())


# --- what later releases write: lists of earlier voyages, presumed identities, corrections -----


def test_each_listed_earlier_voyage_has_its_own_date_type_count_and_gate() -> None:
    release = parse_press_release(LISTED, source_name="p20261210_01.pdf")
    assert _tuples(release.activities) == [
        ("2026-12-09", "Type 052D", 1, "miyako"),
        ("2026-12-09", "Type 054A", 1, "miyako"),
    ]
    assert _tuples(release.previously_reported) == [
        ("2026-11-26", "Type 052D", 1, "tsushima"),  # ① both ships
        ("2026-11-26", "Type 054A", 1, "tsushima"),
        ("2026-11-28", "Type 052D", 1, "tsugaru"),  # ② both, 28th to 29th
        ("2026-11-28", "Type 054A", 1, "tsugaru"),
        ("2026-12-01", "Type 054A", 1, "osumi"),  # ③ the frigate alone, by its hull number
        ("2026-12-03", "Type 052D", 1, "yonaguni"),  # ④ the destroyer, by its type and count
    ]
    assert release.previously_reported[2].end_date == dt.date(2026, 11, 29)
    # the list ends where the Ministry's own action begins
    assert all(a.platform != "P-3C" for a in release.previously_reported)


def test_presumed_identities_roles_and_escorts() -> None:
    release = parse_press_release(JOINT, source_name="p20261209_01.pdf")
    assert release.unknown_labels == ()
    assert _tuples(release.activities) == [
        ("2026-12-09", "H-6", 2, "miyako"),
        ("2026-12-09", "Tu-95", 2, "miyako"),
        ("2026-12-09", "unidentified aircraft", 2, "tsushima"),  # 推定ロシア機×２機
        ("2026-12-09", "unidentified fighter", 4, None),
        ("2026-12-09", "Y-9 ELINT", 1, None),  # 情報収集機（Ｙ－９）: the role is kept
    ]
    presumed = release.activities[2]
    assert (presumed.nationality, presumed.presumed) == ("RUS", True)
    # the escorts' route, told in the sentence after: East China Sea to the Sea of Japan
    assert release.activities[3].areas == ("東シナ海", "日本海")
    assert release.areas == ("東シナ海", "太平洋", "日本海")


def test_a_correction_notice_reports_nothing_new_and_says_what_it_corrects() -> None:
    release = parse_press_release(NOTICE, source_name="p20261211_01.pdf")
    assert release.activities == () and release.previously_reported == ()
    correction = release.correction
    assert correction is not None and not correction.reissued
    assert correction.release_date == dt.date(2026, 12, 9)
    assert correction.title == "中国機及びロシア機の東シナ海及び太平洋における飛行について"
    assert [(a.platform, a.count) for a in correction.wrong] == [("H-6", 2), ("Tu-95", 2)]
    assert [(a.platform, a.count) for a in correction.activities] == [("H-6", 2), ("Tu-95", 3)]


@pytest.mark.parametrize(("wrong", "right"), [("【訂正前】", "【訂正後】"), ("誤：", "正：")])
def test_the_ways_a_notice_marks_its_passages(wrong: str, right: str) -> None:
    text = NOTICE.replace("（誤）", wrong).replace("（正）", right)
    correction = parse_press_release(text, source_name="x").correction
    assert correction is not None
    assert [(a.platform, a.count) for a in correction.wrong] == [("H-6", 2), ("Tu-95", 2)]
    assert [(a.platform, a.count) for a in correction.activities] == [("H-6", 2), ("Tu-95", 3)]


def test_a_release_given_again_as_corrected() -> None:
    release = parse_press_release(REISSUE, source_name="p20261211_02.pdf")
    assert release.activities == ()
    correction = release.correction
    assert correction is not None and correction.reissued
    assert correction.title == "中国機及びロシア機の東シナ海及び太平洋における飛行について"
    assert _tuples(correction.activities) == [
        ("2026-12-09", "H-6", 2, "miyako"),
        ("2026-12-09", "Tu-95", 3, "miyako"),
    ]


def test_sailing_around_a_strait_is_not_passing_it() -> None:
    assert straits_in("津軽海峡周辺の接続水域内を東進した後、反転し") == []
    assert straits_in("津軽海峡を東進した後") == ["tsugaru"]


def test_passages_keep_their_heading_and_the_sea_they_head_for() -> None:
    (first, second) = transits_in(
        "対馬海峡を北東進し、日本海へ向けて航行した後、宗谷海峡を東進した"
    )
    assert (first.gate, first.heading, first.toward) == ("tsushima", "北東進", "日本海")
    assert (second.gate, second.heading, second.toward) == ("soya", "東進", None)


# --- never raises ---------------------------------------------------------------------------

FRAGMENTS = [
    "令和８年", "令和元年", "平成３１年", "１２月", "３０日", "（水）", "５日（火）", "から",
    "にかけて", "、", "。", "\n", " ", "ロシア海軍", "中国海軍", "推定中国", "中国の",
    "ウダロイⅠ級駆逐艦", "（艦番号「５６４」）", "「」", "及び", "×１機", "２隻", "x",
    "対馬海峡", "沖縄本島と宮古島との間", "その後、", "なお、", "同一である", "について",
    "午後１時頃", "情報収集機（ＩＬ－２０）", "空母「遼寧」", "の計３隻を確認した",
    "令和99年13月40日", "0日", "緊急発進", "機", "隻",
]  # fmt: skip

release_text = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=80).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(text=release_text, name=st.sampled_from(["x", "p20260101_01.pdf", "p99991231_01.pdf"]))
def test_the_parser_never_raises(text: str, name: str) -> None:
    release = parse_press_release(text, source_name=name)
    assert isinstance(release, PressRelease)
    for activity in release.activities:
        assert activity.nationality in ("CHN", "RUS")


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_characters="中ロ"), max_size=400))
def test_text_naming_no_foreign_force_gives_an_empty_result(text: str) -> None:
    release = parse_press_release(text, source_name="x")
    assert release.activities == () and release.previously_reported == ()
    assert release.unknown_labels == ()
