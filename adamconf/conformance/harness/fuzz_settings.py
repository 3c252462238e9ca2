"""What ``adamconf fuzz`` (and :func:`.fuzz.run`) is asked to do: :class:`FuzzSettings`,
checked when made, and the defaults the command line shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from adamconf.conformance.harness.fuzz_property import SearchSpace

__all__ = ["FuzzSettings", "ENGINES", "DEFAULT_MAX_EXAMPLES", "INVALID_PHASE_EXAMPLES"]

ENGINES = ("auto", "hypofuzz", "jobs")

DEFAULT_MAX_EXAMPLES = 200
INVALID_PHASE_EXAMPLES = 30


@dataclass(frozen=True)
class FuzzSettings:
    """What ``adamconf fuzz`` (and :func:`.fuzz.run`) does; checked when made."""

    backend: str = "numpy"
    variants: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    allow_non_finite: bool = False
    max_steps: int = 20
    max_elements: int = 16
    max_examples: int | None = None
    seconds: float | None = None
    seed: int | None = None
    derandomize: bool = False
    database: str | Path | None = None  # a folder or a Redis URL (redis://host:port)
    no_database: bool = False
    timeout: float = 60.0
    invalid: bool = False
    no_invalid: bool = False
    regressions: Path | None = None  # default: the user's folder (default_regressions_folder)
    no_save: bool = False
    quiet: bool = False
    jobs: int | None = None  # fuzzing processes; None: the machine's cores (1 derandomized)
    engine: str = "auto"  # who runs -j N: hypofuzz, jobs, or auto (hypofuzz where installed)
    dashboard: int | None = None  # HypoFuzz's dashboard on this port (0: any free one)
    replay: bool = False  # only the failures saved in the database, shrunk and saved

    def __post_init__(self) -> None:
        from adamconf.conformance.errors import UsageError

        if self.max_examples is not None and self.max_examples < 1:
            raise UsageError(f"--max-examples {self.max_examples}: give a number of examples "
                             ">= 1")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise UsageError(f"--seconds {self.seconds}: give a positive number of seconds")
        if self.max_steps < 1 or self.max_elements < 1:
            raise UsageError("--max-steps and --max-elements must be at least 1")
        if self.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        if self.invalid and self.no_invalid:
            raise UsageError("--invalid and --no-invalid exclude each other")
        if self.database is not None and self.no_database:
            raise UsageError("--database and --no-database exclude each other")
        if self.jobs is not None and self.jobs < 1:
            raise UsageError(f"--jobs {self.jobs}: give at least 1")
        if self.derandomize and (self.jobs or 1) > 1:
            raise UsageError("--derandomize runs one job (the same examples on every run): "
                             "leave out --jobs, or give --seed instead of --derandomize")
        if self.engine not in ENGINES:
            raise UsageError(f"--engine {self.engine}: give one of {', '.join(ENGINES)}")
        if self.replay and self.no_database:
            raise UsageError("--replay runs the failures saved in the example database: "
                             "it needs one (leave out --no-database)")
        if self.replay and self.invalid:
            raise UsageError("--replay and --invalid exclude each other")
        if self.derandomize and (self.database is not None or self.replay):
            raise UsageError("--derandomize draws the same examples on every run, and "
                             "hypothesis keeps no example database for it: leave out "
                             "--database and --replay")
        if self.dashboard is not None:
            if not 0 <= self.dashboard <= 65535:
                raise UsageError(f"--dashboard {self.dashboard}: give a port, 0 to 65535")
            if self.engine == "jobs" or self.replay or self.invalid or self.derandomize:
                raise UsageError("--dashboard is HypoFuzz's: it needs the hypofuzz engine "
                                 "(not --engine jobs, --replay, --invalid or --derandomize)")
        if self.database is not None and not isinstance(self.database, str):
            object.__setattr__(self, "database", str(self.database))
        for name in ("variants", "devices", "dtypes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def database_off(self) -> bool:
        """No example database: --no-database, or --derandomize (hypothesis refuses one for a
        derandomized test)."""
        return self.no_database or self.derandomize

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(allow_non_finite=self.allow_non_finite, max_steps=self.max_steps,
                           max_elements=self.max_elements)
