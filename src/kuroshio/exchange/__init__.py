"""The exchange protocol between partner nodes: release to outboxes, signed and chained batches,
Merkle proofs, receipts, and where each link stands.

The pipeline is ingest → ``release`` (``policy.decide``) → ``outbox`` → a running link → the
partner's inbox; ``batch``, ``receipt``, ``merkle``, ``proofs`` and ``wire`` are the pure parts it
is built from. Nothing here knows the node or opens a connection: the running links live in
:mod:`kuroshio.federation`.
"""
