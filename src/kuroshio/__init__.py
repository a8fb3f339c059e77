"""kuroshio: reciprocal, live exchange of air and maritime security observations.

The public records live in :mod:`kuroshio.model`; a node is assembled in :mod:`kuroshio.node`.
"""

__version__ = "0.1.0"
