"""Delivery: sending what was claimed, and what providers say afterwards.

- ``claims``: who may send a row, until when, and the fence checked before each send.
- ``dispatch``: claim queued rows (or take a bulk chunk's claim) and send them, batch by batch.
- ``dispatch_config``: what a dispatch needs from the settings, and the SMS link domain.
- ``sender``: one claimed row rendered, checked, debited (SMS) and handed to its provider.
- ``send_outcomes``: a batch's outcomes written on the rows still under the claim.
- ``settlement``: ending claimed rows and moving their run's totals (dispatch and recovery).
- ``outgoing_email`` and ``outgoing_sms``: one claimed row becomes the bytes a provider takes.
- ``receipts``: the one durable write per message, made before the next send.
- ``retry``: backoff for temporary failures.
- ``outcomes``: an answer's outcome class and code, each code's meaning, suppression and
  precedence; ``email_outcomes`` (SES, SMTP) and ``sms_outcomes`` (Twilio, AWS SMS) map
  every provider answer to one, as tables; ``outcome_table`` is the README's table of them.
- ``provider_events``, ``sns`` and ``after_send``: webhook events stored once, SNS signatures,
  and applying bounces, complaints and delivery reports to the rows.
- ``pauses``: channels paused for an org because our side is misconfigured.
- ``credits``: SMS credits, one per segment, never below zero.
- ``channels``: one interface each for email and SMS, with real and outbox implementations.
"""
