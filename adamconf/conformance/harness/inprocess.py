"""A backend answered in this process, with the worker's interface (``BackendProcess``): no
crash isolation and no timeout, but breakpoints and tracebacks work (for debugging an Adam).
``adamconf.api`` and the tests use it; ``adamconf run`` always uses a worker."""

from __future__ import annotations

from collections.abc import Callable

from adamconf.conformance.harness.worker import Reply, ReplyKind, answer, first_use_build

__all__ = ["InProcessBackend"]


class InProcessBackend:
    """A backend object answered in this process, with BackendProcess's interface: no crash
    isolation and no timeout, but breakpoints and tracebacks work (for debugging an Adam)."""

    def __init__(self, backend, notify: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.timeout = None
        self.notify = notify
        self._pending: list[Reply] = []
        self._built = False

    def _build(self) -> None:
        """The first-use build, as a worker runs it before its first answer (no budget)."""
        if self._built:
            return
        self._built = True

        def tell(reply: Reply) -> None:
            if self.notify is None:
                return
            name = getattr(self.backend, "name", "backend")
            if reply.kind is ReplyKind.BUILDING:
                self.notify(f"{name}: building {reply.value.what} at first use …")
            else:
                self.notify(f"{name}: " + (f"the build failed: {reply.message}" if reply.message
                                           else f"built in {reply.value:g} s"))

        first_use_build(self.backend, tell)

    def request(self, *message, timeout: float | None = None) -> Reply:
        self._build()
        return answer(self.backend, message)

    def send(self, *message) -> None:
        self._build()
        self._pending.append(answer(self.backend, message))

    def receive(self, timeout: float | None = None) -> Reply:
        return self._pending.pop(0)

    def close(self) -> None:
        pass

    def __enter__(self) -> InProcessBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
