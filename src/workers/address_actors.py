"""Actors of address changes: CRM email and phone change events."""
