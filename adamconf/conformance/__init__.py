"""The conformance suite, by room:

- ``judge/``   the derived error bounds, verdicts, dialect identification, and the one rule
               that turns case results into conformance (``outcome.decide``)
- ``corpus/``  the case catalogue, the golden files (I/O and data), hypothesis strategies
- ``harness/`` what runs a backend: the worker process, the runner, the registry, fuzzing
- ``report/``  readers of a run's records: terminal text, JSON/JUnit, HTML, findings
- ``cli/``     argparse only: one module per command, over :mod:`.api`
- ``tools/``   developer tools apart from the judging path: bench, sharpness
- ``api.py``   the Python API (``check``, ``fuzz``); ``plugin.py`` the pytest plugin
"""
