"""The shared progress helper: log lines instead of bars off a terminal, and the serial/pool map."""

import logging

import pytest

from imagenot import progress as P


def _square(x: int) -> int:
    return x * x


def test_progress_logs_rate_lines_when_not_a_tty(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="imagenot.progress")
    items = list(P.progress(range(5), desc="scan", unit="row", interval=0.0))
    assert items == [0, 1, 2, 3, 4]
    lines = [r.getMessage() for r in caplog.records]
    assert lines and lines[-1].startswith("scan: 5/5 row (100%)") and "row/s" in lines[-1]


def test_progress_can_be_switched_off(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="imagenot.progress")
    P.set_enabled(False)
    try:
        assert list(P.progress(range(3), desc="quiet", interval=0.0)) == [0, 1, 2]
    finally:
        P.set_enabled(True)
    assert not caplog.records


def test_line_gives_an_eta_for_known_totals():
    bar = P.Progress(100, desc="embed", unit="caption", enabled=False)
    bar.n = 50
    text = bar.line(now=bar._t0 + 10.0)
    assert text.startswith("embed: 50/100 caption (50%)") and "5.0 caption/s" in text and "ETA 0:10" in text


def test_slow_units_are_given_in_seconds_each():
    bar = P.Progress(24, desc="zoo", unit="run", enabled=False)
    bar.n = 3
    text = bar.line(now=bar._t0 + 90.0)
    assert "30 s/run" in text and "ETA 10:30" in text and "run/s" not in text


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_map_serial_and_spawned_give_every_result(workers: int):
    got = dict(P.pool_map(_square, [1, 2, 3, 4], workers=workers, enabled=False))
    assert got == {1: 1, 2: 4, 3: 9, 4: 16}


def test_pool_map_raises_task_errors():
    with pytest.raises(ZeroDivisionError):
        list(P.pool_map(lambda x: 1 // x, [1, 0], workers=1, enabled=False))
