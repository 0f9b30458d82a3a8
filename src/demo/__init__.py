"""The demo's world: seeding orgs, contacts, SMS agents and every failure reason.

- ``world``: the orgs, contacts and special cases (one per failure reason) of the demo.
- ``sms_world``: Zylker's SMS setup (DLT templates approved), field agents, an unready org.
- ``plan``: one invite the demo runs (``RunPlan``), shared by both worlds.
"""
