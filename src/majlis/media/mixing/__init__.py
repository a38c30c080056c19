"""Mixing: a jitter buffer per speaker, one mix per space, a mix-minus per speaker, levels,
the limiter."""
