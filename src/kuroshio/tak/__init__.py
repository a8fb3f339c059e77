"""Cursor-on-Target out of a running node: TAK clients connect (TCP, or TLS with client
certificates, as to a TAK Server's streaming port), or the node pushes to a TAK Server.

:class:`~kuroshio.tak.service.CotService` follows the store's changes and the fused picture and
hands each output (:mod:`kuroshio.tak.output`) the events its audience may see and its operator
chose; ``kuroshio serve`` runs it for the ``[cot.NAME]`` tables of ``kuroshio.toml``.
"""

from kuroshio.tak.output import CotOutputRunner, OutputStatus
from kuroshio.tak.service import CotService

__all__ = ["CotOutputRunner", "CotService", "OutputStatus"]
