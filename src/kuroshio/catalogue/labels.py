"""Platform labels as sources write them, reduced to comparable keys.

Pure text functions: mojibake repair, width/case/variant folding and the key the catalogue
indexes by. Nothing here knows which platform a label names; that is the catalogue's job.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Final

# Simplified and Japanese (shinjitai) forms → the Traditional forms used in Taiwanese labels, so
# that 轰-6 / 轟-6 and 戦闘機 / 戰鬥機 share a key. Only characters that occur in platform labels.
_VARIANTS: Final = str.maketrans(
    {
        "歼": "殲",
        "轰": "轟",
        "运": "運",
        "机": "機",
        "侦": "偵",
        "无": "無",
        "舰": "艦",
        "级": "級",
        "驱": "驅",
        "駆": "驅",
        "护": "護",
        "卫": "衛",
        "导": "導",
        "弹": "彈",
        "弾": "彈",
        "战": "戰",
        "戦": "戰",
        "斗": "鬥",
        "闘": "鬥",
        "电": "電",
        "预": "預",
        "补": "補",
        "给": "給",
        "综": "綜",
        "调": "調",
        "两": "兩",
        "击": "擊",
        "撃": "擊",
        "潜": "潛",
        "对": "對",
        "対": "對",
        "収": "收",
        "测": "測",
        "观": "觀",
        "観": "觀",
        "远": "遠",
        "术": "術",
        "气": "氣",
        "気": "氣",
        "飘": "飄",
        "苏": "蘇",
        "恺": "愷",
        "凯": "凱",
        "岛": "島",
        "载": "載",
        "国": "國",
        "罗": "羅",
        "图": "圖",
        "尔": "爾",
        "鸣": "鳴",
        "荣": "榮",
        "栄": "榮",
        "纳": "納",
        "亚": "亞",
        "维": "維",
        "赞": "贊",
        "诺": "諾",
        "龙": "龍",
        "竜": "龍",
        "备": "備",
        "逻": "邏",
        "昇": "升",
        "扰": "擾",
        "发": "發",
        "発": "發",
        "视": "視",
        "实": "實",
        "実": "實",
        "号": "號",
        "統": "統",
        "统": "統",
        "査": "查",
        "廣": "廣",
        "广": "廣",
        "兰": "蘭",
        "蘭": "蘭",
    }
)

# Characters that carry no identity in a label: spacing, hyphen-like dashes, middle dots and the
# reference marks some tables put before a name (※フユ級…).
_NOISE: Final = re.compile(r"[\s\-‐‑‒–—―−_・·･※*＊]+")

# Leading words that say whose or how sure, not what: 推定中国無人機 is a UAV.
_QUALIFIERS: Final = re.compile(
    r"^(?:推定)?(?:中國|中華人民共和國|俄國|俄羅斯|ロシア|ソ連|蘇聯)?(?:海軍|軍|空軍|海警局)?(?:の)?(?:推定)?"
)
_PRESUMED_SUFFIX: Final = re.compile(r"\((?:推定|推測)\)$")
_GENERIC_SUFFIXES: Final = ("機", "型", "級")

_PARENTHESISED: Final = re.compile(r"\(([^()]*)\)")

# Role words that follow a designator (Y-9情報収集機); stripped only as a last resort so that a
# new role spelling still reaches the airframe or the class it names.
ROLE_WORDS: Final = (
    "早期警戒管制機",
    "早期警戒機",
    "情報收集機",
    "電子戰機",
    "偵察/攻擊型無人機",
    "偵察型無人機",
    "攻擊型無人機",
    "無人偵察機",
    "無人機",
    "戰鬥爆擊機",
    "戰鬥機",
    "爆擊機",
    "轟炸機",
    "哨戒機",
    "輸送機",
    "運輸機",
    "空中給油機",
    "給油機",
    "加油機",
    "偵察機",
    "反潛機",
    "ヘリコプター",
    "直升機",
    "ミサイル驅逐艦",
    "驅逐艦",
    "フリゲート",
    "補給艦",
    "情報收集艦",
)


def repair_mojibake(text: str) -> str:
    """UTF-8 text that was decoded as Latin-1 (``æ®²-16æ©`` → ``殲-16機``), else ``text``.

    Only text made entirely of Latin-1 code points with some of them above ASCII is tried, and
    it is kept only if it decodes as UTF-8, so clean text is never altered.
    """
    if not any("\x80" <= char <= "\xff" for char in text) or any(ord(c) > 0xFF for c in text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return text


def normalise_label(label: str) -> str:
    """A label fit for display and matching: repaired, NFKC (full-width → half-width,
    Ⅲ → III), with runs of whitespace collapsed."""
    text = unicodedata.normalize("NFKC", repair_mojibake(label))
    return " ".join(text.split())


def label_key(label: str) -> str:
    """The catalogue index key of a label.

    NFKC, Traditional character forms, upper case, no spacing or dashes, without a leading
    nationality/"presumed" qualifier, a trailing ``(推定)``, or a trailing 機/型/級.
    """
    text = normalise_label(label).translate(_VARIANTS).upper()
    text = _NOISE.sub("", text)
    text = _PRESUMED_SUFFIX.sub("", text)
    stripped = _QUALIFIERS.sub("", text, count=1)
    if stripped:
        text = stripped
    while len(text) > 1 and text.endswith(_GENERIC_SUFFIXES):
        text = text[:-1]
    return text


def _folded(label: str) -> str:
    return _NOISE.sub("", normalise_label(label).translate(_VARIANTS).upper())


def parenthesised_parts(label: str) -> tuple[str, str | None]:
    """The label without its parenthesised parts, and the last parenthesised part if any.

    ``偵察型無人機（BZK-005）`` → (``偵察型無人機``, ``BZK-005``). Parts that only say
    "presumed" do not count.
    """
    text = normalise_label(label)
    inner = [part for part in _PARENTHESISED.findall(text) if part.strip() not in ("推定", "推測")]
    outer = _PARENTHESISED.sub("", text).strip()
    return outer, (inner[-1].strip() if inner else None)


def without_role_word(label: str) -> Iterator[str]:
    """The folded label with a trailing role word removed (``Y-9電子戰機`` → ``Y-9``), if one
    is there and something is left."""
    text = _folded(label)
    for word in ROLE_WORDS:
        folded_word = _NOISE.sub("", word)
        if text.endswith(folded_word) and len(text) > len(folded_word):
            yield text[: -len(folded_word)]
