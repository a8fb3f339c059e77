"""The MIL-STD-2525D symbol of an observation, as the picture draws it: the catalogue's code of
its type (else of its class, else a bare air or sea frame) with the standard identity of its
nationality: friend for the own party and partners, hostile for any other, unknown when unsaid.

The browser's ``web/src/symbols.js`` applies the same rule; it decides nothing about release.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from kuroshio.catalogue import (
    CLASS_SYMBOLS,
    UNSPECIFIED_ENTITY,
    Catalogue,
    StandardIdentity,
    class_symbol_code,
    symbol_code,
)
from kuroshio.model import Observation

AIR_SET: Final = "01"
SEA_SET: Final = "30"


def standard_identity(observation: Observation, friendly: Collection[str]) -> StandardIdentity:
    """Friend when the platform's nationality is one of ``friendly``, hostile when it is another,
    unknown when neither the record nor its catalogue type says whose it is."""
    platform = observation.platform
    nationality = platform.nationality if platform else None
    if nationality is None and platform is not None and platform.type is not None:
        entry = Catalogue.load().get(platform.type)
        nationality = entry.nationality if entry else None
    if nationality is None:
        return "unknown"
    return "friend" if nationality in friendly else "hostile"


def observation_sidc(observation: Observation, friendly: Collection[str]) -> str | None:
    """The 20-digit SIDC of an air or sea observation (None for an area)."""
    if observation.kind == "area":
        return None
    identity = standard_identity(observation, friendly)
    platform = observation.platform
    if platform is not None and platform.type is not None:
        entry = Catalogue.load().get(platform.type)
        if entry is not None:
            return entry.sidc_for(identity)
    if platform is not None and platform.platform_class in CLASS_SYMBOLS:
        return class_symbol_code(platform.platform_class, identity)
    symbol_set = SEA_SET if observation.kind == "sea" else AIR_SET
    return symbol_code(symbol_set, UNSPECIFIED_ENTITY, identity)
