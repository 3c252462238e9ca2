"""Hypothesis profiles for the suite's own property tests.

- ``dev`` (the default): 25 examples per test, no deadline (the mpmath reference's speed
  varies with the machine's load; ``adamconf bench`` measures speed, not the tests).
- ``ci``: derandomized (every CI run tests the same examples), no deadline, a modest
  number of examples, no database, the too-slow health check off, and the reproduction
  blob printed with a failure.
- ``soak``: ``ADAMCONF_EXAMPLES`` examples per test (default 2000), for a long run of the
  no-false-failure properties.

``HYPOTHESIS_PROFILE=<name>`` chooses one; otherwise ``ci`` where the ``CI`` environment
variable is set (as CI services set it), ``dev`` elsewhere. A test's own ``@settings``
overrides what it names (``max_examples``, say) and inherits the rest from the profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Both start from hypothesis's own defaults, not from whatever profile is loaded now
# (hypothesis loads its built-in "ci" profile by itself where CI is set).
_base = settings.get_profile("default")
settings.register_profile("dev", parent=_base, max_examples=25, deadline=None)
settings.register_profile("ci", parent=_base, derandomize=True, deadline=None, max_examples=30,
                          database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
# a long run of the property tests: ADAMCONF_EXAMPLES examples each (2000 by default)
settings.register_profile("soak", parent=_base, deadline=None, database=None,
                          max_examples=int(os.environ.get("ADAMCONF_EXAMPLES", "2000")),
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])


def _profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").strip().lower() not in ("", "0", "false") else "dev"


settings.load_profile(_profile())
