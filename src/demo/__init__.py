"""The demo's world: seeding orgs, contacts, SMS agents and every failure reason."""
