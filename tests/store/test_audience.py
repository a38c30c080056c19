"""The audience over time in the store, against SQLite and PostgreSQL: samples read back
oldest first, a second sample at the same moment is ignored, and each raises the peak."""

from __future__ import annotations

from majlis.store import Store
from majlis.types import AudienceSample

from .test_store import T0, hosted_space


async def test_samples_read_back_in_order_and_raise_the_peak(store: Store) -> None:
    await hosted_space(store)
    for at, listeners in ((T0 + 20, 2), (T0, 5), (T0 + 10, 9)):
        sample = AudienceSample(at, listeners, listeners * 3, listeners * 2)
        await store.add_audience_sample("s1", sample)
    await store.add_audience_sample("s1", AudienceSample(T0 + 10, 1, 0, 0))  # same moment: kept
    samples = await store.list_audience("s1", limit=10)
    assert samples == [
        AudienceSample(T0, 5, 15, 10),
        AudienceSample(T0 + 10, 9, 27, 18),
        AudienceSample(T0 + 20, 2, 6, 4),
    ]
    assert await store.list_audience("s1", limit=2) == samples[:2]
    assert await store.list_audience("nope", limit=10) == []
    space = await store.get_space("s1")
    assert space is not None and space.peak_listeners == 9  # a peak never comes down
