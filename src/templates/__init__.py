"""Default email and SMS templates shipped with portalflow."""
