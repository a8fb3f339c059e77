"""Agreement files: what is accepted, what is refused (and where), and how signatures behave."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from policy_cases import (
    NOW,
    pinned,
    public_key,
    signed_text,
    signing_key,
    twn_jpn_text,
)

from kuroshio.errors import AgreementError
from kuroshio.policy.agreement import (
    parse_agreement,
    read_agreement,
    sign_agreement,
    signed_bytes,
    verify_agreement,
    with_signature,
)


def refused(text: str) -> AgreementError:
    with pytest.raises(AgreementError) as caught:
        parse_agreement(text, source="agreements/twn-jpn.toml")
    return caught.value


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_the_example_agreement_reads_with_rules_per_direction() -> None:
    parsed = parse_agreement(twn_jpn_text(), source="twn-jpn.toml")
    agreement = parsed.agreement
    assert agreement.parties == ("JPN", "TWN")
    assert [r.id for r in agreement.rules("TWN", "JPN")] == ["sea-sw", "air-adiz"]
    assert [r.id for r in agreement.rules("JPN", "TWN")] == ["jpn-everything"]
    assert agreement.rules("TWN", "USA") == ()
    release = agreement.rules("TWN", "JPN")[1]
    assert release.transform.coarsen_km == 10.0
    assert release.transform.marking is not None
    assert release.transform.marking.rerelease_to == ("USA",)
    # a single string where a list is expected is read as a one-item list
    assert agreement.rules("TWN", "JPN")[0].match.kind == ("sea",)


def test_a_toml_syntax_error_names_file_and_line() -> None:
    text = twn_jpn_text().replace('drop = ["remarks"]', 'drop = ["remarks"')
    error = refused(text)
    assert error.file == "agreements/twn-jpn.toml"
    assert error.line == line_of(text, "drop = ") + 1  # TOML notices on the next line
    assert "not valid TOML" in str(error)


def test_an_unknown_zone_is_refused_naming_the_field_and_line() -> None:
    text = twn_jpn_text().replace('area = ["twn-adiz"]', 'area = ["twn-adz"]')
    error = refused(text)
    assert error.field == "direction[0].rule[1].match.area[0]"
    assert error.line == line_of(text, 'area = ["twn-adz"]')
    assert "unknown zone 'twn-adz'" in error.reason
    assert "twn-adiz-sw" in error.reason  # the known zones are listed


def test_a_wrong_type_is_refused_with_its_path_and_line() -> None:
    text = twn_jpn_text().replace("delay_s = 1800", 'delay_s = "half an hour"')
    error = refused(text)
    assert error.field == "direction[0].rule[1].transform.delay_s"
    assert error.line == line_of(text, "delay_s =")


def test_an_unknown_key_is_refused() -> None:
    error = refused(twn_jpn_text().replace("delay_s = 1800", "delay_s = 1800\nblur_km = 3"))
    assert "blur_km" in str(error)


def test_a_time_without_zone_is_refused() -> None:
    error = refused(twn_jpn_text().replace("2024-01-01T00:00:00Z", "2024-01-01T00:00:00"))
    assert error.field == "valid_from"
    assert "time zone" in error.reason


CONTRADICTION = """\
id = "twn-jpn"
version = 1
parties = ["TWN", "JPN"]
valid_from = 2024-01-01T00:00:00Z
valid_until = 2026-01-01T00:00:00Z

[[direction]]
from = "TWN"
to = ["JPN"]

[[direction.rule]]
id = "bombers-out"
action = "release"
match = {{ kind = ["air"], platform_class = ["bomber"] }}

[[direction.rule]]
id = "bombers-stay"
action = "withhold"
match = {second}
"""


def test_two_rules_with_the_same_match_and_opposite_actions_are_refused_naming_both() -> None:
    text = CONTRADICTION.format(second='{ platform_class = "bomber", kind = "air" }')
    error = refused(text)
    assert "'bombers-out'" in error.reason and "'bombers-stay'" in error.reason
    assert "one releases and the other withholds" in error.reason
    assert error.line == line_of(text, 'id = "bombers-stay"') - 1
    first_rule_line = line_of(text, 'id = "bombers-out"') - 1
    assert f"line {first_rule_line}" in error.reason


def test_a_rule_that_an_earlier_opposite_rule_hides_is_refused() -> None:
    # Everything "adiz-bombers" matches is already released by "bombers-out".
    text = CONTRADICTION.format(
        second='{ kind = "air", platform_class = "bomber", area = "twn-adiz", '
        'tlp_at_most = "AMBER" }'
    )
    error = refused(text)
    assert "can never apply" in error.reason and "'bombers-out'" in error.reason


def test_partly_overlapping_opposite_rules_are_allowed_and_the_first_wins() -> None:
    text = CONTRADICTION.format(second='{ kind = "air" }')
    parsed = parse_agreement(text)
    assert [r.action for r in parsed.agreement.rules("TWN", "JPN")] == ["release", "withhold"]


def test_a_rule_hidden_by_an_earlier_rule_with_the_same_action_is_a_warning() -> None:
    text = CONTRADICTION.format(second='{ kind = "air", platform_class = "bomber" }').replace(
        'action = "withhold"', 'action = "release"'
    )
    parsed = parse_agreement(text)
    assert any("never applies" in warning for warning in parsed.warnings)


def test_zone_containment_counts_when_rules_overlap() -> None:
    # The south-west sector lies inside the Taiwan ADIZ, so withholding in the sector after
    # releasing in the whole ADIZ would never apply.
    text = CONTRADICTION.format(second='{ kind = "air", platform_class = "bomber" }')
    text = text.replace(
        'match = { kind = ["air"], platform_class = ["bomber"] }',
        'match = { kind = ["air"], platform_class = ["bomber"], area = "twn-adiz" }',
    ).replace(
        'match = { kind = "air", platform_class = "bomber" }',
        'match = { kind = "air", platform_class = "bomber", area = "twn-adiz-sw" }',
    )
    assert "can never apply" in refused(text).reason


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ('parties = ["TWN", "JPN"]', "parties", "at least two"),
        ("valid_until = 2026-01-01T00:00:00Z", "valid_until", "later than valid_from"),
        ('from = "TWN"', "direction[0].from", "not a party"),
        ('to = ["JPN"]', "direction[0].to", "not a party"),
        ('tlp_at_most = "AMBER"', "direction[0].rule[1].match.tlp_at_most", "RED never leaves"),
        ('action = "withhold"', "direction[0].rule[0].transform", "cannot transform"),
        ('id = "jpn-everything"', "direction[1].rule[0].id", "also used"),
        ('area = ["twn-adiz"]', "direction[0].rule[1].match.area_test", "needs an area"),
    ],
)
def test_meaningless_agreements_are_refused(change: str, field: str, words: str) -> None:
    replacement = {
        "parties": 'parties = ["TWN"]',
        "valid_until": "valid_until = 2023-01-01T00:00:00Z",
        "direction[0].from": 'from = "USA"',
        "direction[0].to": 'to = ["KOR"]',
        "direction[0].rule[1].match.tlp_at_most": 'tlp_at_most = "RED"',
        "direction[0].rule[0].transform": 'action = "withhold"\ntransform = { delay_s = 60 }',
        "direction[1].rule[0].id": 'id = "air-adiz"',
        "direction[0].rule[1].match.area_test": 'area = ["median-line"]\narea_test = "within"',
    }[field]
    text = twn_jpn_text().replace(change, replacement, 1)
    error = refused(text)
    assert error.field == field
    assert words in error.reason
    assert error.line is not None


def test_a_reciprocity_action_without_its_parameter_is_refused() -> None:
    text = twn_jpn_text().replace(
        "\n[[direction]]",
        '\n[reciprocity]\nmin_ratio = 0.5\non_shortfall = "delay"\n\n[[direction]]',
        1,
    )
    error = refused(text)
    assert error.field == "reciprocity.delay_s"


def test_an_inline_polygon_is_an_area() -> None:
    text = twn_jpn_text().replace(
        'area = ["twn-adiz"]', "polygon = [[119.0, 21.0], [123.0, 21.0], [123.0, 26.0]]"
    )
    parsed = parse_agreement(text)
    assert parsed.areas["air-adiz"].contains(__import__("shapely").Point(121.0, 23.0))
    bad = twn_jpn_text().replace('area = ["twn-adiz"]', "polygon = [[119.0, 21.0], [123.0, 21.0]]")
    assert refused(bad).field == "direction[0].rule[1].match.polygon"


def test_a_missing_file_is_an_agreement_error(tmp_path: Path) -> None:
    with pytest.raises(AgreementError, match="cannot read"):
        read_agreement(tmp_path / "absent.toml")


# --- canonical bytes and signatures ------------------------------------------------------------


def test_layout_comments_and_order_do_not_change_what_is_signed() -> None:
    text = twn_jpn_text()
    other = "# rewritten by hand\n" + text.replace(
        'parties = ["TWN", "JPN"]', 'parties = [ "JPN" , "TWN" ]'
    ).replace("2024-01-01T00:00:00Z", "2024-01-01T08:00:00+08:00").replace(
        "coarsen_km = 10", "coarsen_km = 10.0"
    )
    first = parse_agreement(text).agreement
    second = parse_agreement(other).agreement
    assert signed_bytes(first) == signed_bytes(second)
    assert signed_bytes(first).startswith(b"kuroshio agreement v1\x00{")


def test_signing_appends_signature_tables_and_keeps_the_text_above() -> None:
    text = twn_jpn_text()
    signed = signed_text(text, ["TWN", "JPN"])
    assert signed.startswith(text.rstrip("\n"))
    assert signed.count("[[signature]]") == 2
    parsed = parse_agreement(signed)
    enforced = verify_agreement(parsed, pinned())
    assert [c.state for c in enforced.signatures] == ["valid", "valid"]


def test_signing_again_replaces_that_partys_signature() -> None:
    once = signed_text(twn_jpn_text(), ["TWN"])
    twice = signed_text(once, ["TWN"], now=NOW + dt.timedelta(days=1))
    assert twice.count("[[signature]]") == 1
    assert "2024-06-02T12:00:00Z" in twice


def test_an_agreement_signed_by_one_party_only_is_not_enforced() -> None:
    parsed = parse_agreement(signed_text(twn_jpn_text(), ["TWN"]), source="twn-jpn.toml")
    with pytest.raises(AgreementError) as caught:
        verify_agreement(parsed, pinned())
    assert "JPN: not signed" in caught.value.reason


def test_a_changed_rule_after_signing_breaks_the_signatures() -> None:
    signed = signed_text(twn_jpn_text(), ["TWN", "JPN"])
    tampered = signed.replace("coarsen_km = 10", "coarsen_km = 1")
    with pytest.raises(AgreementError) as caught:
        verify_agreement(parse_agreement(tampered), pinned())
    assert "does not match this content" in caught.value.reason


def test_a_signature_by_a_key_other_than_the_pinned_one_is_refused() -> None:
    signed = signed_text(twn_jpn_text(), ["TWN", "JPN"])
    keys = pinned()
    keys["JPN"] = public_key("USA")
    with pytest.raises(AgreementError) as caught:
        verify_agreement(parse_agreement(signed), keys)
    assert "JPN: signed by key" in caught.value.reason
    assert "pinned for JPN" in caught.value.reason


def test_a_party_without_a_pinned_key_cannot_be_verified() -> None:
    signed = signed_text(twn_jpn_text(), ["TWN", "JPN"])
    with pytest.raises(AgreementError, match="no key pinned for JPN"):
        verify_agreement(parse_agreement(signed), pinned(["TWN"]))


def test_a_non_party_cannot_sign() -> None:
    parsed = parse_agreement(twn_jpn_text())
    with pytest.raises(AgreementError, match="USA is not a party"):
        sign_agreement(
            parsed, party="USA", signer=signing_key("USA"), public_key=public_key("USA"), now=NOW
        )


def test_signatures_must_come_last_in_the_file() -> None:
    signed = signed_text(twn_jpn_text(), ["TWN"])
    moved = signed + '\n[[direction]]\nfrom = "JPN"\nto = ["TWN"]\n'
    with pytest.raises(AgreementError):
        parsed = parse_agreement(moved)
        with_signature(
            parsed,
            sign_agreement(
                parsed,
                party="JPN",
                signer=signing_key("JPN"),
                public_key=public_key("JPN"),
                now=NOW,
            ),
        )
