"""Corrections (訂正) of Japan Joint Staff Office press releases: which release, which activities.

Pure functions over parsed releases (:mod:`kuroshio.ingest.jso_press_text`): find the release a
correction names among those read with it, and pair each of its activities with the corrected
reading. A correction never adds an activity: a corrected reading that matches none of the
release's activities is reported as a problem, and an activity the corrected release no longer
has is withdrawn. It builds no observations and stores nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

import msgspec

from kuroshio.ingest.jso_press_text import PressActivity, PressCorrection, PressRelease

_NOT_TITLE: Final = re.compile(r"[\s「」『』()（）【】\[\]]|お知らせ|訂正|の?一部")


def title_key(title: str | None) -> str:
    """A title as compared: NFKC, without spacing, brackets and the words 訂正 or お知らせ."""
    return _NOT_TITLE.sub("", unicodedata.normalize("NFKC", title or ""))


def corrected_release(
    correction: PressCorrection, releases: Sequence[PressRelease], *, issued: PressRelease
) -> PressRelease | None:
    """The release a correction corrects, among ``releases`` (None when it is not there).

    The same title, and the date the correction gives when it gives one; of several, the latest
    published before the correction.
    """
    wanted = title_key(correction.title)
    candidates = [
        release
        for release in releases
        if release.correction is None
        and release is not issued
        and (not wanted or title_key(release.title) == wanted)
        and (correction.release_date is None or release.release_date == correction.release_date)
    ]
    if not candidates and correction.release_date is not None:
        # The title as the correction quotes it may differ; the date and the subject do not.
        candidates = [
            release
            for release in releases
            if release.correction is None
            and release is not issued
            and release.release_date == correction.release_date
            and release.activities
        ]
        if len(candidates) > 1:
            return None
    earlier = [
        release
        for release in candidates
        if issued.release_date is None
        or release.release_date is None
        or release.release_date <= issued.release_date
    ]
    if not earlier:
        return None
    return max(earlier, key=lambda r: (r.release_date or issued.release_date, r.source_name))


class Pairing(msgspec.Struct, frozen=True, kw_only=True):
    """How a correction applies to the activities of the release it corrects."""

    corrected: dict[int, PressActivity]
    """Activity number (1-based, as the release's records number them) → its corrected reading."""
    withdrawn: tuple[int, ...] = ()
    """Activities the corrected release no longer reports."""
    problems: tuple[str, ...] = ()
    """Corrected readings that match no activity of the release (nothing is added for them)."""


def pair(original: PressRelease, correction: PressCorrection) -> Pairing:
    """Each corrected reading with the activity of ``original`` it replaces."""
    if correction.reissued:
        return _pair_reissued(original.activities, correction.activities)
    return _pair_passages(original.activities, correction.wrong, correction.activities)


def _pair_reissued(
    activities: Sequence[PressActivity], corrected: Sequence[PressActivity]
) -> Pairing:
    """The release given again whole: its activities in the same order replace the old ones."""
    paired = {number: reading for number, reading in enumerate(corrected[: len(activities)], 1)}
    problems = tuple(
        f"activity {number} of the corrected reading ({_what(reading)}) is not in the release "
        "it corrects: a correction adds nothing"
        for number, reading in enumerate(corrected[len(activities) :], len(activities) + 1)
    )
    withdrawn = tuple(range(len(corrected) + 1, len(activities) + 1))
    return Pairing(corrected=paired, withdrawn=withdrawn, problems=problems)


def _pair_passages(
    activities: Sequence[PressActivity],
    wrong: Sequence[PressActivity],
    right: Sequence[PressActivity],
) -> Pairing:
    """Quoted passages (誤 → 正): the activity the wrong passage names, read the right way."""
    paired: dict[int, PressActivity] = {}
    problems: list[str] = []
    for index, reading in enumerate(right):
        quoted = wrong[index] if len(wrong) == len(right) else None
        number = _find(activities, quoted or reading, taken=paired)
        if number is None and quoted is not None:
            number = _find(activities, reading, taken=paired)
        if number is None and len(right) == len(activities) and index + 1 not in paired:
            number = index + 1
        if number is None:
            problems.append(
                f"the corrected passage on {_what(reading)} matches no activity of the release "
                "it corrects: a correction adds nothing"
            )
            continue
        paired[number] = _applied(activities[number - 1], reading)
    return Pairing(corrected=paired, problems=tuple(problems))


def _find(
    activities: Sequence[PressActivity], reading: PressActivity, *, taken: dict[int, PressActivity]
) -> int | None:
    """The first free activity of the same type and count, else of the same type."""
    for key in (_exactly, _same_type):
        for number, activity in enumerate(activities, 1):
            if number not in taken and key(activity) == key(reading):
                return number
    return None


def _exactly(activity: PressActivity) -> tuple[object, ...]:
    return (activity.platform, activity.label, activity.count, activity.nationality)


def _same_type(activity: PressActivity) -> tuple[object, ...]:
    return (activity.platform or activity.label, activity.nationality)


def _applied(activity: PressActivity, reading: PressActivity) -> PressActivity:
    """The activity with what a corrected passage says of it; what the passage does not say
    (its day, route, position) stays as the release had it."""
    return msgspec.structs.replace(
        activity,
        platform=reading.platform,
        platform_class=reading.platform_class,
        label=reading.label,
        count=reading.count,
        nationality=reading.nationality,
        presumed=reading.presumed,
        hull_numbers=reading.hull_numbers or activity.hull_numbers,
        straits=reading.straits or activity.straits,
        transits=reading.transits or activity.transits,
        directions=reading.directions or activity.directions,
        areas=reading.areas or activity.areas,
        position=reading.position or activity.position,
    )


def _what(activity: PressActivity) -> str:
    count = f" ×{activity.count}" if activity.count else ""
    return f"{activity.label}{count}"
