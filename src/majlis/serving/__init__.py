"""uvicorn as Majlis runs it: connections accepted in batches (acceptor.py), held while
their client ignores a Retry-After it was given, and writes refused as they are read
while the worker sheds load (holds.py, early.py)."""

from majlis.serving.acceptor import BATCH, KEEP_ALIVE_S, Acceptor, Server
from majlis.serving.holds import ConnectionHolds

__all__ = ["BATCH", "KEEP_ALIVE_S", "Acceptor", "ConnectionHolds", "Server"]
