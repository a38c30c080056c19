"""uvicorn as Majlis runs it: connections accepted in batches (acceptor.py), held while
their client ignores a Retry-After it was given, writes refused as they are read
while the worker sheds load (holds.py, early.py), and let into the application a few
at a time (door.py)."""

from majlis.serving.acceptor import BATCH, KEEP_ALIVE_S, Acceptor, Server
from majlis.serving.door import Door
from majlis.serving.holds import ConnectionHolds

__all__ = ["BATCH", "KEEP_ALIVE_S", "Acceptor", "ConnectionHolds", "Door", "Server"]
