"""The control plane's side of a cluster of media nodes: which node runs a space, offers
sent to it, and listeners' HLS requests passed through to it."""

from majlis.cluster.proxy import ClusterOrigin
from majlis.cluster.remote import LocalNode, RemoteMedia

__all__ = ["ClusterOrigin", "LocalNode", "RemoteMedia"]
