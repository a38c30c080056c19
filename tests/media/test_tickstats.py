"""Recent: a ring of the last values of a measurement, whole or its newest part."""

from __future__ import annotations

from majlis.media.mixing.tickstats import Recent


def test_percentiles_of_everything_kept_or_of_the_newest() -> None:
    recent = Recent(size=10)
    assert recent.percentile(50) == 0.0 and recent.percentile(50, last=3) == 0.0
    for value in range(1, 5):  # 1 2 3 4
        recent.add(float(value))
    assert recent.percentile(100) == 4.0 and recent.percentile(0) == 1.0
    assert recent.percentile(0, last=2) == 3.0
    assert recent.percentile(0, last=50) == 1.0  # more than there are: all of them


def test_the_newest_across_the_end_of_the_ring() -> None:
    recent = Recent(size=5)
    for value in range(1, 13):  # keeps 8 9 10 11 12; 11 and 12 wrapped to the front
        recent.add(float(value))
    assert recent.percentile(0) == 8.0 and recent.max == 12.0
    assert recent.percentile(0, last=3) == 10.0
    assert recent.percentile(100, last=3) == 12.0
    assert recent.percentile(0, last=5) == 8.0
    for value in (13.0, 14.0, 15.0):  # the newest end exactly at the ring's end
        recent.add(value)
    assert recent.count % 5 == 0
    assert recent.percentile(0, last=2) == 14.0
