"""What leaves a node for the tools people already watch: GeoJSON for GIS, KML/KMZ for Google
Earth, Cursor-on-Target for TAK, and the check that an item's marking allows it out.

Pure functions of the records: nothing here opens a socket, reads a store or writes a file
(:mod:`kuroshio.tak` streams Cursor-on-Target, the command line and the API write the files).
"""

from kuroshio.export.geojson import feature_collection, flat_feature, flat_properties
from kuroshio.export.release import Audience, OutputFilter, output_refusal
from kuroshio.export.symbols import observation_sidc, standard_identity

__all__ = [
    "Audience",
    "OutputFilter",
    "feature_collection",
    "flat_feature",
    "flat_properties",
    "observation_sidc",
    "output_refusal",
    "standard_identity",
]
