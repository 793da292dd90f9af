"""Loa: mass SMS and notification dispatcher driven by an epidemic communication plan."""

__version__ = "0.1.0"
