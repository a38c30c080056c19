"""The Store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
import pytest_asyncio

from conftest import POSTGRES_URL, require_service
from majlis.store import DuplicateError, Store, open_store
from majlis.store.migrate import load_migrations
from majlis.store.postgres import PostgresStore
from majlis.store.sqlite import SqliteStore
from majlis.types import Avatar, Invite, Role, Space, SpaceState, SpeakRequest, User, Visibility

T0 = 1_700_000_000.0
StoreFactory = Callable[[], Store]

_reachable: dict[str, bool] = {}


async def _postgres_reachable() -> bool:
    if "postgres" not in _reachable:
        try:
            conn = await asyncpg.connect(POSTGRES_URL, timeout=2)
        except (OSError, TimeoutError, asyncpg.PostgresError):
            _reachable["postgres"] = False
        else:
            await conn.close()
            _reachable["postgres"] = True
    return _reachable["postgres"]


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StoreFactory]:
    """Makes unopened stores that all share one fresh database."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "majlis.db"
        yield lambda: SqliteStore(path)
        return
    require_service("postgres", await _postgres_reachable())
    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield lambda: PostgresStore(POSTGRES_URL, schema=schema)
    finally:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=2)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest_asyncio.fixture
async def store(backend: StoreFactory) -> AsyncIterator[Store]:
    s = backend()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def user(name: str, at: float = T0) -> User:
    return User(f"id-{name.lower()}", name, f"{name} D", at, password_hash=f"hash-{name}")


def space(
    space_id: str,
    host: User,
    *,
    title: str = "a talk",
    state: SpaceState = SpaceState.LIVE,
    visibility: Visibility = Visibility.PUBLIC,
    at: float = T0,
    scheduled_for: float | None = None,
    started_at: float | None = None,
    ended_at: float | None = None,
) -> Space:
    return Space(
        id=space_id,
        host_id=host.id,
        title=title,
        description="about things",
        state=state,
        visibility=visibility,
        created_at=at,
        scheduled_for=scheduled_for,
        started_at=started_at,
        ended_at=ended_at,
    )


async def users(store: Store, *names: str) -> list[User]:
    made = [user(n) for n in names]
    for u in made:
        await store.create_user(u)
    return made


async def hosted_space(store: Store, space_id: str = "s1") -> tuple[User, Space]:
    [host] = await users(store, "Host")
    s = space(space_id, host, started_at=T0)
    await store.create_space(s)
    return host, s


# users ------------------------------------------------------------------------------------


async def test_user_round_trip_and_case_insensitive_lookup(store: Store) -> None:
    [alice] = await users(store, "Alice")
    assert await store.get_user(alice.id) == alice
    found = await store.get_user_by_username("aLICE")
    assert found == alice
    assert found is not None and found.password_hash == "hash-Alice"
    assert await store.get_user("nobody") is None
    assert await store.get_user_by_username("bob") is None


async def test_duplicate_username_is_case_insensitive(store: Store) -> None:
    await users(store, "Alice")
    with pytest.raises(DuplicateError):
        await store.create_user(User("other-id", "ALICE", "x", T0))
    with pytest.raises(DuplicateError):
        await store.create_user(User("id-alice", "someone-else", "x", T0))
    # The failed inserts rolled back cleanly; the store is still usable.
    await store.create_user(User("other-id", "Alicia", "x", T0))
    assert await store.get_user_by_username("alicia") is not None


# spaces -----------------------------------------------------------------------------------


async def test_create_space_adds_host_and_fills_host_username(store: Store) -> None:
    host, s = await hosted_space(store)
    got = await store.get_space(s.id)
    assert got is not None
    assert got.host_username == "Host"
    assert got.title == s.title and got.state is SpaceState.LIVE and got.started_at == T0
    [p] = await store.list_participants(s.id)
    assert (p.user_id, p.role, p.muted, p.joined_at) == (host.id, Role.HOST, False, T0)
    assert (p.username, p.display_name) == ("Host", "Host D")
    assert await store.get_space("missing") is None


async def test_create_space_duplicate_id_raises_and_keeps_original(store: Store) -> None:
    host, s = await hosted_space(store)
    with pytest.raises(DuplicateError):
        await store.create_space(space(s.id, host, title="again"))
    got = await store.get_space(s.id)
    assert got is not None and got.title == s.title


async def test_transition_is_compare_and_set(store: Store) -> None:
    [host] = await users(store, "Host")
    await store.create_space(space("s1", host, state=SpaceState.SCHEDULED, scheduled_for=T0))
    assert not await store.transition_space("s1", SpaceState.LIVE, SpaceState.ENDED, T0 + 1)
    assert await store.transition_space("s1", SpaceState.SCHEDULED, SpaceState.LIVE, T0 + 2)
    assert not await store.transition_space("s1", SpaceState.SCHEDULED, SpaceState.LIVE, T0 + 3)
    live = await store.get_space("s1")
    assert live is not None and live.state is SpaceState.LIVE
    assert (live.started_at, live.ended_at) == (T0 + 2, None)
    assert await store.transition_space("s1", SpaceState.LIVE, SpaceState.ENDED, T0 + 4)
    ended = await store.get_space("s1")
    assert ended is not None and ended.state is SpaceState.ENDED
    assert (ended.started_at, ended.ended_at) == (T0 + 2, T0 + 4)
    assert not await store.transition_space("missing", SpaceState.LIVE, SpaceState.ENDED, T0)


async def test_concurrent_transitions_have_one_winner(store: Store) -> None:
    await hosted_space(store)
    results = await asyncio.gather(
        *(store.transition_space("s1", SpaceState.LIVE, SpaceState.ENDED, T0 + i) for i in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]


async def test_raise_peak_listeners_only_raises(store: Store) -> None:
    await hosted_space(store)
    for count, expected in [(5, 5), (3, 5), (9, 9), (0, 9)]:
        await store.raise_peak_listeners("s1", count)
        got = await store.get_space("s1")
        assert got is not None and got.peak_listeners == expected


# listing ----------------------------------------------------------------------------------


async def _catalogue(store: Store) -> None:
    """Spaces of two hosts in every state, out of order on purpose."""
    amal, bilal = await users(store, "Amal", "Bilal")
    live, sched, ended = SpaceState.LIVE, SpaceState.SCHEDULED, SpaceState.ENDED
    for s in [
        space("live-old", amal, title="Morning News", state=live, started_at=T0 + 10),
        space("live-new", bilal, title="Jazz night", state=live, started_at=T0 + 30),
        space("live-mid", amal, title="Secret", state=live, started_at=T0 + 20,
              visibility=Visibility.UNLISTED),
        space("sch-late", bilal, title="Late show", state=sched, scheduled_for=T0 + 900),
        space("sch-soon", amal, title="Soon news", state=sched, scheduled_for=T0 + 100),
        space("end-old", bilal, title="Old chat", state=ended, started_at=T0, ended_at=T0 + 5),
        space("end-new", amal, title="100% real", state=ended, started_at=T0, ended_at=T0 + 50),
    ]:  # fmt: skip
        await store.create_space(s)


async def _ids(
    store: Store,
    *,
    state: SpaceState | None = None,
    query: str | None = None,
    host_id: str | None = None,
    include_unlisted: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[str]:
    spaces = await store.list_spaces(
        state=state,
        query=query,
        host_id=host_id,
        include_unlisted=include_unlisted,
        limit=limit,
        offset=offset,
    )
    return [s.id for s in spaces]


async def test_list_spaces_orders_each_state(store: Store) -> None:
    await _catalogue(store)
    assert await _ids(store, state=SpaceState.LIVE) == ["live-new", "live-old"]
    assert await _ids(store, state=SpaceState.LIVE, include_unlisted=True) == [
        "live-new",
        "live-mid",
        "live-old",
    ]
    assert await _ids(store, state=SpaceState.SCHEDULED) == ["sch-soon", "sch-late"]
    assert await _ids(store, state=SpaceState.ENDED) == ["end-new", "end-old"]
    # No state filter: live, then upcoming, then past.
    assert await _ids(store) == [
        "live-new",
        "live-old",
        "sch-soon",
        "sch-late",
        "end-new",
        "end-old",
    ]


async def test_list_spaces_query_matches_title_or_host(store: Store) -> None:
    await _catalogue(store)
    assert await _ids(store, query="NEWS") == ["live-old", "sch-soon"]
    assert await _ids(store, query="bil") == ["live-new", "sch-late", "end-old"]
    assert await _ids(store, query="secret") == []
    assert await _ids(store, query="secret", include_unlisted=True) == ["live-mid"]
    # LIKE wildcards in the query are literal characters.
    assert await _ids(store, query="%") == ["end-new"]
    assert await _ids(store, query="_") == []


async def test_list_spaces_host_filter_and_paging(store: Store) -> None:
    await _catalogue(store)
    host = await store.get_user_by_username("amal")
    assert host is not None
    assert await _ids(store, host_id=host.id, include_unlisted=True) == [
        "live-mid",
        "live-old",
        "sch-soon",
        "end-new",
    ]
    everything = await _ids(store, include_unlisted=True)
    pages = [await _ids(store, include_unlisted=True, limit=3, offset=o) for o in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == everything
    listed = await store.list_spaces(
        state=SpaceState.LIVE, query=None, host_id=None, include_unlisted=False, limit=1, offset=0
    )
    assert [(s.id, s.host_username) for s in listed] == [("live-new", "Bilal")]


async def test_unicode_titles_round_trip_and_search(store: Store) -> None:
    [host] = await users(store, "Host")
    await store.create_user(User("id-arabic", "layla", "ليلى 🌙", T0))
    title = "مجلس الشعر العربي 🎙️✨"
    await store.create_space(
        Space("ar", "id-arabic", title, "نقاش مفتوح 👋", SpaceState.LIVE, Visibility.PUBLIC, T0)
    )
    await store.create_space(space("en", host, title="English 🇬🇧"))
    got = await store.get_space("ar")
    assert got is not None and (got.title, got.description) == (title, "نقاش مفتوح 👋")
    [p] = await store.list_participants("ar")
    assert p.display_name == "ليلى 🌙"
    assert await _ids(store, query="الشعر") == ["ar"]
    assert await _ids(store, query="🇬🇧") == ["en"]


# participants -----------------------------------------------------------------------------


async def test_set_role_respects_limit_without_counting_self(store: Store) -> None:
    await hosted_space(store)
    a, b, c, d = await users(store, "A", "B", "C", "D")
    for u in (a, b, c):
        assert await store.set_role("s1", u.id, Role.SPEAKER, limit=3, at=T0)
    assert not await store.set_role("s1", d.id, Role.SPEAKER, limit=3, at=T0)
    assert await store.get_participant("s1", d.id) is None
    # Re-setting a member already counted does not count against itself.
    assert await store.set_role("s1", a.id, Role.SPEAKER, limit=3, at=T0)
    # Other roles have their own count; moving a speaker up frees a speaker seat.
    assert await store.set_role("s1", a.id, Role.COHOST, limit=1, at=T0)
    assert await store.set_role("s1", d.id, Role.SPEAKER, limit=3, at=T0)
    assert not await store.set_role("s1", b.id, Role.COHOST, limit=1, at=T0)
    assert await store.set_role("s1", b.id, Role.COHOST, limit=None, at=T0)


async def test_set_role_orders_participants(store: Store) -> None:
    host, _ = await hosted_space(store)
    a, b, c = await users(store, "A", "B", "C")
    await store.set_role("s1", a.id, Role.SPEAKER, limit=None, at=T0 + 1)
    await store.set_role("s1", b.id, Role.COHOST, limit=None, at=T0 + 3)
    await store.set_role("s1", c.id, Role.SPEAKER, limit=None, at=T0 + 2)
    listed = await store.list_participants("s1")
    assert [(p.user_id, p.role) for p in listed] == [
        (host.id, Role.HOST),
        (b.id, Role.COHOST),
        (a.id, Role.SPEAKER),
        (c.id, Role.SPEAKER),
    ]
    assert [p.username for p in listed] == ["Host", "B", "A", "C"]


async def test_set_role_rejects_listener_host_and_host_demotion(store: Store) -> None:
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    for role in (Role.LISTENER, Role.HOST):
        with pytest.raises(ValueError):
            await store.set_role("s1", a.id, role, limit=None, at=T0)
    assert not await store.set_role("s1", host.id, Role.SPEAKER, limit=None, at=T0)
    still = await store.get_participant("s1", host.id)
    assert still is not None and still.role is Role.HOST
    assert not await store.set_role("missing", a.id, Role.SPEAKER, limit=None, at=T0)


async def test_set_role_keeps_muted_and_clears_request_and_invite(store: Store) -> None:
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    await store.add_speak_request(SpeakRequest("s1", a.id, T0))
    await store.add_invite(Invite("s1", a.id, host.id, T0))
    assert await store.set_role("s1", a.id, Role.SPEAKER, limit=None, at=T0 + 1)
    assert await store.list_speak_requests("s1") == []
    assert await store.get_invite("s1", a.id) is None
    fresh = await store.get_participant("s1", a.id)
    assert fresh is not None and not fresh.muted and fresh.joined_at == T0 + 1
    assert await store.set_muted("s1", a.id, True)
    assert await store.set_role("s1", a.id, Role.COHOST, limit=None, at=T0 + 9)
    moved = await store.get_participant("s1", a.id)
    assert moved is not None
    assert (moved.role, moved.muted, moved.joined_at) == (Role.COHOST, True, T0 + 1)


async def test_set_role_is_atomic_under_concurrency(store: Store) -> None:
    await hosted_space(store)
    crowd = await users(store, *(f"user{i}" for i in range(20)))
    results = await asyncio.gather(
        *(store.set_role("s1", u.id, Role.SPEAKER, limit=10, at=T0) for u in crowd)
    )
    assert results.count(True) == 10
    speakers = [p for p in await store.list_participants("s1") if p.role is Role.SPEAKER]
    assert len(speakers) == 10


async def test_transfer_host_swaps_host_and_cohost_once(store: Store) -> None:
    host, _ = await hosted_space(store)
    a, b, c = await users(store, "A", "B", "C")
    await store.set_role("s1", a.id, Role.COHOST, limit=None, at=T0)
    await store.set_role("s1", b.id, Role.COHOST, limit=None, at=T0)
    await store.set_role("s1", c.id, Role.SPEAKER, limit=None, at=T0)
    assert not await store.transfer_host("s1", host.id, c.id)  # a speaker: no
    assert not await store.transfer_host("s1", a.id, b.id)  # `a` is not the host: no
    # Two workers deciding at once: one wins, and there is one host.
    results = await asyncio.gather(
        store.transfer_host("s1", host.id, a.id), store.transfer_host("s1", host.id, b.id)
    )
    assert sorted(results) == [False, True]
    new = a if results[0] else b
    got = await store.get_space("s1")
    assert got is not None and got.host_id == new.id
    roles = {p.user_id: p.role for p in await store.list_participants("s1")}
    assert [u for u, r in roles.items() if r is Role.HOST] == [new.id]
    assert roles[host.id] is Role.COHOST and roles[c.id] is Role.SPEAKER


async def test_transfer_host_only_in_a_live_space(store: Store) -> None:
    [host, a] = await users(store, "Host", "A")
    await store.create_space(space("s1", host, state=SpaceState.SCHEDULED))
    await store.set_role("s1", a.id, Role.COHOST, limit=None, at=T0)
    assert not await store.transfer_host("s1", host.id, a.id)
    assert not await store.transfer_host("nope", host.id, a.id)


async def test_remove_participant_never_removes_host(store: Store) -> None:
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    await store.set_role("s1", a.id, Role.SPEAKER, limit=None, at=T0)
    assert not await store.remove_participant("s1", host.id)
    assert await store.get_participant("s1", host.id) is not None
    assert await store.remove_participant("s1", a.id)
    assert not await store.remove_participant("s1", a.id)
    assert await store.get_participant("s1", a.id) is None


async def test_set_muted_needs_a_row(store: Store) -> None:
    host, _ = await hosted_space(store)
    assert await store.set_muted("s1", host.id, True)
    p = await store.get_participant("s1", host.id)
    assert p is not None and p.muted
    assert not await store.set_muted("s1", "nobody", True)


# speak requests and invites ---------------------------------------------------------------


async def test_speak_requests_oldest_first_without_duplicates(store: Store) -> None:
    await hosted_space(store)
    a, b, c = await users(store, "A", "B", "C")
    assert await store.add_speak_request(SpeakRequest("s1", b.id, T0 + 2))
    assert await store.add_speak_request(SpeakRequest("s1", c.id, T0 + 3))
    assert await store.add_speak_request(SpeakRequest("s1", a.id, T0 + 1))
    assert not await store.add_speak_request(SpeakRequest("s1", b.id, T0 + 9))
    listed = await store.list_speak_requests("s1")
    assert [(r.user_id, r.created_at) for r in listed] == [
        (a.id, T0 + 1),
        (b.id, T0 + 2),
        (c.id, T0 + 3),
    ]
    assert (listed[0].username, listed[0].display_name) == ("A", "A D")
    assert await store.remove_speak_request("s1", b.id)
    assert not await store.remove_speak_request("s1", b.id)
    assert [r.user_id for r in await store.list_speak_requests("s1")] == [a.id, c.id]


async def test_invites(store: Store) -> None:
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    invite = Invite("s1", a.id, host.id, T0 + 1)
    assert await store.add_invite(invite)
    assert not await store.add_invite(Invite("s1", a.id, host.id, T0 + 2))
    assert await store.get_invite("s1", a.id) == invite
    assert await store.remove_invite("s1", a.id)
    assert not await store.remove_invite("s1", a.id)
    assert await store.get_invite("s1", a.id) is None


# bans and reminders -----------------------------------------------------------------------


async def test_ban_is_idempotent_and_clears_the_user(store: Store) -> None:
    host, _ = await hosted_space(store)
    a, b = await users(store, "A", "B")
    await store.set_role("s1", a.id, Role.SPEAKER, limit=None, at=T0)
    await store.add_speak_request(SpeakRequest("s1", b.id, T0))
    await store.add_invite(Invite("s1", b.id, host.id, T0))
    assert not await store.is_banned("s1", a.id)
    for banned in (a, b):
        await store.ban("s1", banned.id, host.id, T0 + 1)
        await store.ban("s1", banned.id, host.id, T0 + 2)
        assert await store.is_banned("s1", banned.id)
    assert [p.user_id for p in await store.list_participants("s1")] == [host.id]
    assert await store.list_speak_requests("s1") == []
    assert await store.get_invite("s1", b.id) is None
    assert not await store.is_banned("s1", host.id)


async def test_bans_listed_for_the_bus_are_those_of_spaces_not_ended(store: Store) -> None:
    host, live = await hosted_space(store, "s1")
    await store.create_space(space("s2", host, started_at=T0))
    [a] = await users(store, "A")
    await store.ban("s1", a.id, host.id, T0)
    await store.ban("s2", a.id, host.id, T0)
    assert await store.list_bans() == [("s1", a.id), ("s2", a.id)]
    assert await store.transition_space("s2", live.state, SpaceState.ENDED, T0 + 1)
    assert await store.list_bans() == [("s1", a.id)]


async def test_revocations_last_until_their_tokens_expire(store: Store) -> None:
    assert await store.list_revocations(T0) == []
    await store.revoke_token("t1", T0 + 10)
    await store.revoke_token("t1", T0 + 10)  # idempotent
    await store.revoke_token("t2", T0 + 100)
    assert sorted(await store.list_revocations(T0)) == [("t1", T0 + 10), ("t2", T0 + 100)]
    assert await store.list_revocations(T0 + 10) == [("t2", T0 + 100)]
    await store.prune_revocations(T0 + 50)
    assert await store.list_revocations(T0) == [("t2", T0 + 100)]


async def test_reminders(store: Store) -> None:
    await hosted_space(store)
    a, b = await users(store, "A", "B")
    assert await store.count_reminders("s1") == 0
    assert await store.add_reminder("s1", a.id, T0)
    assert not await store.add_reminder("s1", a.id, T0 + 1)
    assert await store.add_reminder("s1", b.id, T0)
    assert await store.count_reminders("s1") == 2
    assert await store.remove_reminder("s1", a.id)
    assert not await store.remove_reminder("s1", a.id)
    assert await store.count_reminders("s1") == 1
    assert await store.count_reminders("missing") == 0


# migrations and the factory ---------------------------------------------------------------


async def test_reopening_applies_no_migration_twice(backend: StoreFactory) -> None:
    first, second = backend(), backend()
    try:
        # Both race to migrate the same empty database; the lock lets one apply each file.
        await asyncio.gather(first.open(), second.open())
        await first.create_user(user("Alice"))
        assert await second.get_user_by_username("alice") is not None
    finally:
        await first.close()
        await second.close()
    third = backend()
    await third.open()
    try:
        assert await third.get_user("id-alice") is not None
    finally:
        await third.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migrations_are_numbered_from_one(dialect: str) -> None:
    versions = [m.version for m in load_migrations(dialect)]
    assert versions == list(range(1, len(versions) + 1))


def test_dialects_have_the_same_migrations() -> None:
    names = {d: [m.name for m in load_migrations(d)] for d in ("sqlite", "postgres")}
    assert names["sqlite"] == names["postgres"]


def test_open_store_picks_dialect_from_url() -> None:
    assert isinstance(open_store("sqlite:///data/majlis.db"), SqliteStore)
    assert isinstance(open_store("sqlite:////var/lib/majlis.db"), SqliteStore)
    assert isinstance(open_store("postgresql://u@localhost/db"), PostgresStore)
    assert isinstance(open_store("postgres://u@localhost/db"), PostgresStore)
    for bad in ("mysql://localhost/db", "sqlite:///", "sqlite://relative.db", ""):
        with pytest.raises(ValueError):
            open_store(bad)


async def test_open_store_in_memory() -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    try:
        await store.create_user(user("Alice"))
        assert await store.get_user_by_username("ALICE") is not None
    finally:
        await store.close()


async def test_users_by_ids(store: Store) -> None:
    omar, lina = await users(store, "Omar", "lina")
    assert await store.get_users([]) == []
    found = await store.get_users([omar.id, "no-such-id", lina.id])
    assert [u.username for u in found] == ["lina", "Omar"]  # by username, case aside
    assert found[0] == lina


async def test_a_picture_is_set_replaced_and_deleted(store: Store) -> None:
    [lina] = await users(store, "lina")
    assert await store.get_avatar(lina.id) is None
    await store.put_avatar(lina.id, Avatar("image/png", b"\x89PNG first", T0))
    await store.put_avatar(lina.id, Avatar("image/webp", b"RIFF second", T0 + 1))
    assert await store.get_avatar(lina.id) == Avatar("image/webp", b"RIFF second", T0 + 1)
    assert await store.delete_avatar(lina.id) is True
    assert await store.delete_avatar(lina.id) is False
    assert await store.get_avatar(lina.id) is None
