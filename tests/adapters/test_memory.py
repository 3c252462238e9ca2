"""The worker's resident set size, as the runner may read it to recycle a grown worker."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from adamconf.adapters.memory import rss_bytes


def test_rss_is_a_plausible_byte_count():
    rss = rss_bytes()
    assert isinstance(rss, int)
    assert 1 << 20 < rss < 1 << 44  # more than a MiB (Python itself), less than 16 TiB


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS elsewhere: no fall")
def test_rss_follows_what_the_process_touches():
    before = rss_bytes()
    block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, every page written
    during = rss_bytes()
    del block
    assert during - before > 48 << 20


def test_without_proc_the_peak_rss_stands_in(monkeypatch):
    from adamconf.adapters import memory

    pytest.importorskip("resource")
    now = rss_bytes()

    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(memory, "open", no_proc, raising=False)
    peak = memory.rss_bytes()
    assert isinstance(peak, int) and peak >= now // 2  # a peak, in bytes (not kilobytes)
