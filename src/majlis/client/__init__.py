"""Command-line clients: a speaker and a listener that use the same paths as the web app."""
