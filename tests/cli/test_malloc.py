"""handgrad._malloc.tune_allocator: applies on glibc, is a no-op when turned off, and the
`handgrad` command calls it."""

from __future__ import annotations

import sys

import pytest

from handgrad import _malloc
from handgrad.cli import main


def test_turned_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("HANDGRAD_MALLOC_TUNING", "0")
    assert _malloc.tune_allocator() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux only")
def test_applies_on_glibc(monkeypatch):
    monkeypatch.delenv("HANDGRAD_MALLOC_TUNING", raising=False)
    import ctypes
    import ctypes.util
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    assert _malloc.tune_allocator() is hasattr(libc, "gnu_get_libc_version")


def test_the_command_tunes_first(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("handgrad.cli.tune_allocator", lambda: calls.append(1))
    assert main(["gradcheck", "--list", "--op", "add"]) == 0
    capsys.readouterr()
    assert calls == [1]
