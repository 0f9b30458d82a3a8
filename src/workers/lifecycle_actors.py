"""Actors of the portal user lifecycle: the expiry sweep."""
