"""Majlis: self-hostable live audio spaces."""

__version__ = "0.1.0"
