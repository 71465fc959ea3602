"""Fleet sweeps on Ray: one run spread over, or repeated on, the nodes of a Ray cluster.

Nothing here is imported by a local run: ``ray`` is an optional extra and only ``driver`` and ``agent``
touch it. ``nodes`` and ``queue`` are plain Python so that placement decisions are testable without a cluster.
"""
