"""Domain steps, one module per flow. Imports models; never Dramatiq."""
