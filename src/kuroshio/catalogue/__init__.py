"""Platform catalogue: the types seen in the sources, their classes, names and symbols.

``lookup(label)`` resolves a source's label (Chinese, Japanese, mojibake, full-width …) to a
:class:`PlatformType`; unknown labels give None and are for the caller to report, never to guess.
"""

from kuroshio.catalogue.labels import label_key, normalise_label, repair_mojibake
from kuroshio.catalogue.platforms import (
    CLASS_SYMBOLS,
    PLATFORM_CLASSES,
    UNSPECIFIED_ENTITY,
    Catalogue,
    Context,
    Domain,
    PlatformClass,
    PlatformType,
    Precision,
    StandardIdentity,
    UnknownLabels,
    class_symbol_code,
    lookup,
    symbol_code,
)
from kuroshio.errors import CatalogueError, UnknownPlatformLabel

__all__ = [
    "CLASS_SYMBOLS",
    "PLATFORM_CLASSES",
    "UNSPECIFIED_ENTITY",
    "Catalogue",
    "CatalogueError",
    "Context",
    "Domain",
    "PlatformClass",
    "PlatformType",
    "Precision",
    "StandardIdentity",
    "UnknownLabels",
    "UnknownPlatformLabel",
    "class_symbol_code",
    "label_key",
    "lookup",
    "normalise_label",
    "repair_mojibake",
    "symbol_code",
]
