"""The dialogue channel: threads of typed messages between parties (requests for information,
replies, acknowledgements, alerts, notes), their precedence and acknowledgement deadlines, and
what of them may leave for a partner. Pure rules in :mod:`~kuroshio.messages.thread` and
:mod:`~kuroshio.messages.release`; the unit of work in :mod:`~kuroshio.messages.outbound`.
"""
