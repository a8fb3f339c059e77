"""Importers: one module per source, each turning its records into validated observations.

Importers read and validate; storing is the caller's (see :mod:`kuroshio.ingest.load`).
"""
