"""Hypothesis profiles: the same examples on every run by default (CI), random on request.

``pytest --hypothesis-profile=explore`` draws new examples, to look for failures; add any
it finds as an ``@example`` of the test.
"""

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")
