"""Actors that move users between types: transfer-and-delete, lead conversion."""
