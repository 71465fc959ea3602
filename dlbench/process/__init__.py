"""The child-process kit: every process dlbench starts (benchmark worker, verify worker, calibration child)
is started, pinned, watched and ended here, in one way; what a child does is its caller's business.

* :mod:`~dlbench.process.placement`: which cores and thread count a child gets, and its thread environment;
* :mod:`~dlbench.process.messages`: the typed messages a child sends back, one JSON line each, on a private pipe;
* :mod:`~dlbench.process.boot`: the child's entry point (die with the parent, pin, then import the job);
* :mod:`~dlbench.process.child`: the parent's side (spawn, deadlines, memory watchdog, group kill, why it ended;
  ``ask`` for a child that gives one answer);
* :mod:`~dlbench.process.turns`: children that share cores and take turns, one running at a time.

This package imports nothing heavy at module level: :mod:`~dlbench.process.boot` runs in the child *before* the
cores are pinned, and everything it imports is loaded unpinned.
"""
