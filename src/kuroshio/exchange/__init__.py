"""Exchange between partner nodes: release to outboxes, signed and chained batches, receipts.

The pipeline is ingest → ``release.decide`` → ``outbox`` → ``link`` → transport → partner's
``inbox``; ``batch``, ``receipt``, ``merkle`` and ``wire`` are the pure parts it is built from.
Node assembly and serving live in :mod:`kuroshio.node` and :mod:`kuroshio.server`.
"""
