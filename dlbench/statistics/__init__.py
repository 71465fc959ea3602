"""Numbers about numbers, one home for every statistical claim dlbench makes.

``samples`` summarises one case's raw samples (median, its distribution-free confidence interval, IQR,
noise flags) and is light enough for the timing loop; ``rounds`` summarises the round medians of repeated
runs; ``significance`` and ``moderated`` decide whether two sets of rounds differ (the round-level t-test, its
paired and empirical-Bayes moderated forms) for the regression verdicts.
"""
