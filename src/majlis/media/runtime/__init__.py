"""The node's runtime: its loop, the in-thread node, the worker process and its channel,
the node's place in a cluster and its HTTP API."""
