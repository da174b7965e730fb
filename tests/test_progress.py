"""Progress bars draw only on a terminal: logs written to files or pipes get no
carriage-return frames."""

from __future__ import annotations

import sys

import pytest

from feraug.progress import progress_bar


class FakeStream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


@pytest.mark.parametrize(("tty", "quiet", "drawn"), [(False, "", False), (True, "", True),
                                                      (True, "1", False)])
def test_bars_only_on_a_terminal(tty: bool, quiet: str, drawn: bool,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", FakeStream(tty))
    monkeypatch.setenv("FERAUG_QUIET", quiet)
    bar = progress_bar(range(3), file=sys.stderr)
    assert bar.disable is (not drawn)
    assert list(bar) == [0, 1, 2]
    assert progress_bar(range(3), enabled=False, file=sys.stderr).disable


def test_runs_left_are_estimated_from_runs_like_them_then_from_the_pace() -> None:
    from feraug.progress import runs_left_text

    # 600 s and 1,200 s known, the third at this call's mean pace (300 s); two at a time:
    # 1,050 s of work per slot, but the 1,200 s run alone takes longer than that
    assert runs_left_text([600.0, 1200.0, None], [200.0, 400.0], parallel=2) == (
        "3 run(s) left, about 20 min at the pace of finished runs like them")
    assert runs_left_text([600.0] * 4, [], parallel=2).startswith("4 run(s) left, about 20 min")
    assert runs_left_text([1200.0], [], parallel=4).startswith("1 run(s) left, about 20 min")
    assert runs_left_text([600.0, None], [], parallel=1) == (
        "2 run(s) left, about 10 min for 1 of them at the pace of finished runs like them")
    assert runs_left_text([None], []) == "1 run(s) left; no estimate yet"
