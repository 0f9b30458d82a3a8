"""Users: the life of a portal user after the invitation.

- ``lifecycle``: the portal user's state machine; every transition named, the rest refused.
- ``user_actions``: bulk reinvite, deactivate, activate and remove on a user type's users.
- ``transfers``: moving chosen users to another user type.
- ``transfer_and_delete``: deleting a user type by moving all its users, in batches.
- ``lead_conversion``: a converted lead's portal user moves to a Contacts type.
- ``move_rules``: what every move obeys: same preference and module, licences left.
- ``address_changes``: what a CRM email or phone change does (reconfirmation, re-invite).
- ``superseding``: an address change's open invitations superseded, a new one queued.
- ``addresses`` and ``phones``: the email and phone rules every flow checks.
- ``user_history``: which record each user is, and every invitation attempt.
"""
