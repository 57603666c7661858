"""The wall-clock phases of a round (``wall_phases_s`` in ``rounds.jsonl``)."""

import time

import pytest

from strategy.phases import MARKS, PhaseClock


def test_phases_are_the_times_between_marks_in_order():
    clock = PhaseClock()
    for name in MARKS[:4]:
        clock.mark(name)
        time.sleep(0.01)
    phases = clock.phases()
    assert list(phases) == list(MARKS[1:4])
    assert all(0.005 < seconds < 1.0 for seconds in phases.values())


def test_a_missing_mark_merges_two_phases_and_start_begins_a_new_round():
    clock = PhaseClock()
    clock.mark("start")
    clock.mark("train")
    assert list(clock.phases()) == ["train"]
    clock.mark("start")
    assert clock.phases() == {}


def test_unknown_mark_is_refused():
    with pytest.raises(ValueError, match="unknown mark 'upload'"):
        PhaseClock().mark("upload")
