"""Running a run on a Ray cluster: the runner's workers, spread over or repeated on the cluster's nodes.

Nothing here is imported by a local run: ``ray`` is an optional extra and only ``driver`` and ``agent``
touch it. ``nodes`` and ``queue`` are plain Python so that placement decisions are testable without a cluster.
"""
