"""Running a run on this machine: the run loop, the worker it starts for each group of cases, and what the
worker does.

``schedule`` groups the cases per worker and runs the groups (an A/B run's sides of one round side by side,
taking turns), storing each result the moment it exists; ``executor`` starts one worker on the process kit
(:mod:`dlbench.process`) and turns every way it can end into result rows; ``protocol`` is the worker's job
and messages, ``worker`` the worker itself (build, time, read memory, send); ``drift`` measures the fixed
control kernels of every round. Where ``process`` knows how to start any child, ``runner`` knows what a
benchmark worker is; ``fleet`` runs the same workers on the nodes of a Ray cluster.
"""
