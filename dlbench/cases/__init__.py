"""What one case is: the :class:`~dlbench.cases.spec.Case` a plan is made of and the precisions it can ask for.

``spec`` holds the case, the worker key that groups cases into one worker, and the limits of every numeric
setting; ``precision`` the precision recipes (dtypes, loss scaling, tolerances) shared by every adapter. Both
are vocabulary: they know no framework, no machine and no run.
"""
