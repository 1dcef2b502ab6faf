"""smarthydra: an open GB smart-metering system with a Project Hydra communications hub."""

__version__ = "0.1.0"
