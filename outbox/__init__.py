"""The notification side's database half: the transactional outbox and what delivers it.

``hook.py`` records, in each command's own transaction, what the write must tell (the pure
plan of ``notify/plan.py``); ``fanout.py`` turns each record into inbox notices and deliveries
(webhooks to the endpoints that want the events, e-mails, reminders for later);
``dispatch.py`` claims due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one claimer
at a time on SQLite, like the SLA sweep) and sends them, recording every attempt;
``endpoints.py``, ``inbox.py`` and ``status.py`` are what the API and the CLI call.

Why a room of its own above ``cases``: it reads cases through the case service (texts are
read as the recipient sees them, ``texts.py``) and the case room only knows it through the
write hook that ``runtime/bootstrap.py`` wires (``CaseService.on_written``).
"""
