"""portalflow: the worker pipeline that runs the life of a CRM's portal users."""

__version__ = "0.1.0"
