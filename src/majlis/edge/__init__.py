"""The edge: nginx and Varnish in front of origins, configured by Majlis.

It checks playback tokens itself, keeps them out of its cache key, and collapses a whole
audience's requests for a new part or playlist into one origin fetch that streams to all
of them. Imports nothing of ours but the leaves.
"""

from majlis.edge.runner import EdgeError, EdgeRun, read_counter, render_config, run_edge
from majlis.edge.vcl import EdgeSettings, Origin, parse_origin, render_vcl

__all__ = [
    "EdgeError",
    "EdgeRun",
    "EdgeSettings",
    "Origin",
    "parse_origin",
    "read_counter",
    "render_config",
    "render_vcl",
    "run_edge",
]
