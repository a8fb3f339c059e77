"""The running links of a node: the sending :mod:`~kuroshio.federation.link` per partner, the
receiving :mod:`~kuroshio.federation.inbox`, the :mod:`~kuroshio.federation.endpoint` partners'
links come in through, the transports they travel over (mTLS WebSocket, NATS JetStream) and
:mod:`~kuroshio.federation.serve`, which runs them with the operator API in one process.

The protocol they speak (batches, receipts, proofs, outbox rules) is :mod:`kuroshio.exchange`;
this package adds connections, tasks and the node they serve.
"""
