"""The platform catalogue: its data, label resolution, and every label of the real sources."""

from __future__ import annotations

import ast
import csv
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from kuroshio.catalogue import (
    CLASS_SYMBOLS,
    PLATFORM_CLASSES,
    UNSPECIFIED_ENTITY,
    Catalogue,
    UnknownLabels,
    class_symbol_code,
    lookup,
    repair_mojibake,
    symbol_code,
)
from kuroshio.errors import CatalogueError, UnknownPlatformLabel

CATALOGUE = Catalogue.load()


# --- the data -------------------------------------------------------------------------------


def test_every_entry_is_complete_and_in_the_vocabulary() -> None:
    assert len(CATALOGUE) >= 100
    for entry in CATALOGUE:
        assert entry.platform_class in PLATFORM_CLASSES, entry.code
        assert entry.domain == CLASS_SYMBOLS[entry.platform_class][0], entry.code
        assert entry.name_en and entry.name_zh and entry.name_ja, entry.code
        assert entry.nationality in ("CHN", "RUS") or entry.precision == "class", entry.code
        assert re.fullmatch(r"\d{20}", entry.sidc), entry.code
        # Aircraft are drawn in the air set, ships on the surface, submarines below it.
        expected_set = {"air": ("01",), "sea": ("30", "35")}[entry.domain]
        assert entry.symbol_set in expected_set, entry.code
        assert (entry.symbol_set == "35") == (entry.platform_class == "submarine"), entry.code


def test_classes_cover_air_and_sea() -> None:
    assert set(CATALOGUE.classes()) >= {
        "fighter", "bomber", "aew", "asw", "ew", "recon", "uav", "helicopter", "tanker",
        "transport", "carrier", "destroyer", "frigate", "corvette", "amphibious",
        "replenishment", "survey", "intelligence", "submarine", "coast_guard",
    }  # fmt: skip


def test_sidc_encodes_identity_set_and_entity() -> None:
    j16 = CATALOGUE.get("J-16")
    assert j16 is not None
    # version 10, reality, hostile, air, present, fixed-wing fighter
    assert j16.sidc == "10060100001101040000"
    assert j16.sidc_for("suspect") == "10050100001101040000"
    destroyer = CATALOGUE.get("Type 052D")
    assert destroyer is not None and destroyer.sidc == "10063000001202031500"
    submarine = CATALOGUE.get("Kilo (improved)")
    assert submarine is not None and submarine.sidc.startswith("100635")
    coast_guard = CATALOGUE.get("CCG cutter")
    assert coast_guard is not None and coast_guard.symbol_entity == "140300"


def test_a_bare_class_and_an_exercise_track_have_their_own_codes() -> None:
    assert class_symbol_code("bomber") == "10060100001101030000"
    assert class_symbol_code("helicopter", "friend") == "10030100001102000000"
    # a joker: a suspect played in an exercise
    assert symbol_code("01", UNSPECIFIED_ENTITY, "suspect", context="exercise") == (
        "10150100000000000000"
    )


def test_get_by_code() -> None:
    entry = CATALOGUE.get("H-6K")
    assert entry is not None
    assert (entry.platform_class, entry.nationality, entry.service) == ("bomber", "CHN", "PLAAF")
    assert CATALOGUE.get("no such code") is None
    assert "Type 002" in CATALOGUE


# --- resolving labels -----------------------------------------------------------------------

SAME_TYPE_ZH_JA = [
    ("ルーヤンⅢ級ミサイル駆逐艦", "052D旅洋III型導彈驅逐艦", "Type 052D"),
    ("ルーヤンⅢ級", "旅洋III型", "Type 052D"),
    ("ジャンカイⅡ級フリゲート", "054A江凱II型護衛艦", "Type 054A"),
    ("ジャンカイⅢ級フリゲート", "江凱III級護衛艦", "Type 054B"),
    ("レンハイ級ミサイル駆逐艦", "055型刃海級導彈驅逐艦", "Type 055"),
    ("フチ級補給艦", "903型福池級綜合補給艦", "Type 903"),
    ("フユ級高速戦闘支援艦", "901型福玉級綜合補給艦（快速戰鬥支援艦）", "Type 901"),
    ("ドンディアオ級情報収集艦", "815型東調級電子偵察船", "Type 815"),
    ("ステレグシチー級フリゲート", "守護級護衛艦", "Steregushchiy"),
    ("ステレグシチーⅢ級フリゲート", "轟鳴級護衛艦", "Gremyashchiy"),
    ("ウダロイ Ⅰ級駆逐艦", "無畏I級驅逐艦", "Udaloy I"),
    ("ウダロイⅢ級駆逐艦", "無畏III級驅逐艦", "Udaloy III"),
    ("ヴィシニャ級情報収集艦", "維什尼亞級情報收集艦", "Vishnya"),
    ("バルザム級情報収集艦", "巴爾贊姆級情報收集艦", "Balzam"),
    ("スラバ級ミサイル巡洋艦", "光榮級巡洋艦", "Slava"),
    ("タランタルⅢ級ミサイル護衛哨戒艇", "毒蜘蛛III級飛彈艇", "Tarantul III"),
    ("アムガ級ミサイル補給艦", "阿姆加級飛彈補給艦", "Amga"),
    ("ドゥブナ級補給艦", "杜布納級補給艦", "Dubna"),
    ("H-6爆撃機", "轟-6機", "H-6"),
    ("Ｙ－９情報収集機", "運-9情報收集機", "Y-9 ELINT"),
    ("Tu-95爆撃機", "Tu-95轟炸機", "Tu-95"),
    ("推定中国無人機", "推定中國無人機", "unidentified UAV"),
    ("推定中国戦闘機", "推定中國戰鬥機", "unidentified fighter"),
]


@pytest.mark.parametrize(("japanese", "chinese", "code"), SAME_TYPE_ZH_JA)
def test_japanese_and_chinese_labels_land_on_the_same_type(
    japanese: str, chinese: str, code: str
) -> None:
    ja, zh = CATALOGUE.lookup(japanese), CATALOGUE.lookup(chinese)
    assert ja is not None and zh is not None
    assert ja.code == zh.code == code


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("Ｊ－１６戦闘機", "J-16"),  # full-width
        ("殲 -16機", "J-16"),  # stray space
        ("j-16", "J-16"),  # case
        ("歼-16", "J-16"),  # simplified characters
        ("ルーヤンIII級ミサイル駆逐艦", "Type 052D"),  # Latin III for Ⅲ
        ("ルーヤンⅢ級ミサイル駆逐\n艦", "Type 052D"),  # broken line
        ("æ®²-16æ©\x9f", "J-16"),  # UTF-8 read as Latin-1
        ("è½\x9f-6Kæ©\x9f", "H-6K"),
        ("※キロ改級潜水艦", "Kilo (improved)"),  # table reference mark
        ("054A型", "Type 054A"),  # trailing 型
        ("推定中国無人機（推定）", "unidentified UAV"),
        ("偵察型無人機（BZK-005）", "BZK-005"),  # the designation in brackets is more precise
        ("情報収集機（ＩＬ－２０）", "Il-20"),
        ("推定中國戰鬥機（推定殲-16）", "J-16"),
        ("庫茲涅佐夫級航空母艦「山東」", "Type 002"),
        ("空母「遼寧」", "Type 001"),
        ("Y-9輸送機", "Y-9"),  # an unlisted role of a known airframe: the family, not a guess
    ],
)
def test_labels_are_normalised_before_lookup(label: str, code: str) -> None:
    entry = lookup(label)
    assert entry is not None, label
    assert entry.code == code


def test_mojibake_repair_leaves_clean_text_alone() -> None:
    assert repair_mojibake("殲-16機") == "殲-16機"
    assert repair_mojibake("café") == "café"  # Latin-1 that is not UTF-8 bytes
    assert repair_mojibake("ç\x9b´-9å\x8f\x8dæ½\x9bæ©\x9f") == "直-9反潛機"


def test_an_unknown_label_returns_none_and_is_reported() -> None:
    assert CATALOGUE.lookup("J-99戦闘機") is None
    assert CATALOGUE.lookup("神秘機") is None
    with pytest.raises(UnknownPlatformLabel) as raised:
        CATALOGUE.resolve("ナヌチュカ級ミサイル艇", location="p20260101_01.pdf")
    assert raised.value.reason == "unknown"
    assert raised.value.location == "p20260101_01.pdf"
    unknown = UnknownLabels()
    found = CATALOGUE.lookup_or_report("ナヌチュカ級ミサイル艇", unknown, location="here")
    assert found is None
    assert unknown.labels == ("ナヌチュカ級ミサイル艇",)
    assert unknown.locations("ナヌチュカ級ミサイル艇") == ("here",)


def test_a_label_two_nations_share_needs_the_nationality() -> None:
    assert CATALOGUE.lookup("Su-30") is None
    with pytest.raises(UnknownPlatformLabel) as raised:
        CATALOGUE.resolve("Su-30")
    assert raised.value.reason == "ambiguous"
    assert set(raised.value.candidates) == {"Su-30MKK", "Su-30SM"}
    chinese = CATALOGUE.lookup("Su-30", nationality="CHN")
    russian = CATALOGUE.lookup("Ｓｕ－３０戦闘機", nationality="RUS")
    assert chinese is not None and chinese.code == "Su-30MKK"
    assert russian is not None and russian.code == "Su-30SM"
    # A nationality rules out the other nation's types, but not class-only entries.
    assert CATALOGUE.lookup("J-16", nationality="RUS") is None
    generic = CATALOGUE.lookup("戦闘機", nationality="RUS")
    assert generic is not None and generic.precision == "class"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("[[platform]]\ncode='X'\nclass='spaceship'\nnationality='CHN'\nen='x'\nzh='x'\nja='x'",
         "vocabulary"),
        ("[[platform]]\ncode='X'\nclass='fighter'\nen='x'\nzh='x'\nja='x'", "nationality"),
        ("[[platform]]\ncode='X'\nclass='fighter'\nnationality='CHN'\nen='x'\nzh='x'\nja='x'\n"
         "symbol='11'", "6 digits"),
        ("[[platform]]\ncode='X'\nclass='fighter'\nnationality='CHN'\nen='x'\nzh='x'\nja='x'\n"
         "[[platform]]\ncode='X'\nclass='bomber'\nnationality='CHN'\nen='x'\nzh='x'\nja='x'",
         "duplicate"),
        ("[[platform]]\ncode='X'\nclass='fighter'\nnationality='CHN'\nen='x'\nzh='x'\nja='x'\n"
         "aliases=['殲-99']\n[[platform]]\ncode='Y'\nclass='bomber'\nnationality='CHN'\n"
         "en='y'\nzh='y'\nja='y'\naliases=['殲99機']", "also names X"),
        ("platform = 3", "no [[platform]]"),
    ],
)  # fmt: skip
def test_a_malformed_catalogue_names_the_entry_and_the_reason(document: str, reason: str) -> None:
    with pytest.raises(CatalogueError) as raised:
        Catalogue.parse(document, source="test.toml")
    assert reason in raised.value.reason
    assert raised.value.location.startswith("test.toml")


def test_the_packaged_catalogue_is_loaded_once() -> None:
    assert Catalogue.load() is Catalogue.load()


# --- every label of the real sources --------------------------------------------------------


def _unresolved(labels: Counter[tuple[str, str | None]]) -> dict[str, int]:
    return {
        label: n
        for (label, nation), n in labels.items()
        if CATALOGUE.lookup(label, nationality=nation) is None
    }


def test_every_mnd_track_label_resolves(shared_data: Path) -> None:
    features = json.loads(
        (shared_data / "twreporter/Taiwan/20220801-20230915_fixed.geojson").read_text("utf-8")
    )["features"]
    labels: Counter[tuple[str, str | None]] = Counter()
    for feature in features:
        properties = feature["properties"]
        # 機型中文 is clean; Aircraft_Type and 機型原始碼 are the mojibake originals.
        for column in ("機型中文", "Aircraft_Type", "機型原始碼"):
            if properties[column]:
                labels[(properties[column], None)] += 1
    assert len(labels) > 60
    assert _unresolved(labels) == {}, f"unresolved of {sum(labels.values())} labels"
    later = json.loads(
        (shared_data / "twreporter/Taiwan/20230918-20240115.geojson").read_text("utf-8")
    )["features"]
    labels = Counter((f["properties"]["aircraft_type"], None) for f in later)
    assert _unresolved(labels) == {}


def test_the_mojibake_table_agrees_with_the_catalogue(shared_data: Path) -> None:
    with (shared_data / "twreporter/Taiwan/aircraft_zh_type.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    repaired = 0
    for row in rows:
        clean = CATALOGUE.lookup(row["機型中文"])
        raw = CATALOGUE.lookup(row["機型原始碼"])
        # The key is the mojibake as MND's source has it; repaired, it names the same type.
        assert clean is not None and raw is not None and raw.code == clean.code, row
        repaired += repair_mojibake(row["機型原始碼"]) != row["機型原始碼"]
    assert repaired >= 50  # all but the pure-ASCII keys (BZK-005, TB-001 …)


def test_every_jso_track_label_resolves(shared_data: Path) -> None:
    with (shared_data / "twreporter/Japan/jp_data_cleaned.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels: Counter[tuple[str, str | None]] = Counter()
    nation = {"china": "CHN", "russia": "RUS"}
    for row in rows:
        # The country column is unreliable for joint sailings: ship labels go without it.
        for label in ast.literal_eval(row["unique_labels"]):
            labels[(label, None)] += 1
        if row["data"] == "flight":
            content = re.sub(r"_vague$", "", row["id_content"])
            content = re.sub(r"[（(]\d+機[）)]|[×x]?\d+機|[（(]推定[）)]", "", content)
            labels[(content, nation.get(row["country"]))] += 1
    assert len(labels) > 40
    assert _unresolved(labels) == {}


def test_every_ship_type_of_the_strait_table_resolves(shared_data: Path) -> None:
    path = shared_data / "pla-dashboard/japan_strait_transits.csv"
    with path.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    labels: Counter[tuple[str, str | None]] = Counter()
    for row in rows:
        for part in re.split(r"[、+]", row["艦型"]):
            if part.strip():
                labels[(part.strip(), None)] += 1
    # 未提及 ("not stated") and 中俄 ("China and Russia") are in the column but name no type.
    assert set(_unresolved(labels)) == {"未提及", "中俄"}


_CLASS_WORD = r"[ァ-ヶー・]+[IV]*(?:改)?級"
# A class word, then the ship noun, stopping before the next class word of a run-on caption.
_SHIP_CLASS = re.compile(rf"{_CLASS_WORD}(?:(?!{_CLASS_WORD})[ァ-ヶー一-龥])*(?:艦|艇|フリゲート)")
_AIRCRAFT = re.compile(
    r"(?P<nation>推定中国|中国|ロシア|ソ連)(?P<label>[A-Za-z]{1,3}-\d{1,3}[A-Za-z]?"
    r"(?:[一-龥ァ-ヶー/]*?機)?|[一-龥ァ-ヶー]*?(?:無人機|戦闘機|ヘリコプター|爆撃機))"
)


def test_every_type_named_in_the_press_texts_resolves(shared_data: Path) -> None:
    texts = json.loads((shared_data / "pla-dashboard/japan_mod_texts_dev.json").read_text("utf-8"))[
        "texts"
    ]
    labels: Counter[tuple[str, str | None]] = Counter()
    nation = {"推定中国": "CHN", "中国": "CHN", "ロシア": "RUS", "ソ連": "RUS"}
    for release in texts.values():
        # Cells and lines run together once whitespace is gone, as in the PDF's reading order.
        joined = "".join(unicodedata.normalize("NFKC", release["text"]).split())
        for match in _SHIP_CLASS.finditer(joined):
            labels[(match.group(), None)] += 1
        for match in _AIRCRAFT.finditer(joined):
            labels[(match["label"], nation[match["nation"]])] += 1
    # Ship classes, Chinese and Russian aircraft, and the Soviet types of the violation history.
    assert len(labels) >= 45
    assert _unresolved(labels) == {}


def test_a_balloon_has_a_class_and_the_lighter_than_air_symbol() -> None:
    balloon = lookup("氣球")
    assert balloon is not None and balloon.platform_class == "balloon"
    assert balloon.sidc.endswith("1105000000")  # MIL-STD-2525D air, lighter than air
    assert CLASS_SYMBOLS["balloon"] == ("air", "01", "110500")


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("情報収集機（Ｙ－９）", "Y-9 ELINT"),
        ("哨戒機（Ｙ－９）", "Y-9 ASW"),
        ("情報収集機（ＩＬ－２０）", "Il-20"),
        ("偵察／攻撃型無人機（ＴＢ－００１）", "TB-001"),
        ("推定ロシア機", "unidentified aircraft"),
    ],
)
def test_a_role_with_the_designation_in_brackets_names_the_roles_variant(
    label: str, code: str
) -> None:
    found = lookup(label, nationality="RUS" if "ロシア" in label or "ＩＬ" in label else "CHN")
    assert found is not None and found.code == code
