"""A random order of the materialised profiles, so an estimate reads a uniform sample without a scan.

Table ``profile_sample`` holds one empty row per row of ``profiles``, keyed
``<16 hex digits of a hash of the profile id>|<profile id>`` and written in the same batch as the
profile (:meth:`ProfileService.refresh <tessera.profile.service.ProfileService.refresh>`). Profile
ids are not in random order themselves: graph ids are hashes, but the ids of single-identity
profiles spell out their namespace and value, so a run of ``profiles`` keys is a run of one
namespace. Hashing every id again puts all of them in one order unrelated to what the profiles
contain, and :func:`draw` reads a sample from it:

* a sandbox with at most ``n`` profiles is read whole;
* up to :data:`SCAN_ALL_FACTOR` times ``n``, every key of the order is read (a bounded read) and
  ``n`` of them are picked at random: a simple random sample;
* above that, the keys in short arcs of the hash circle, each starting at its own random point
  and long enough to hold :data:`RUN` keys on average, until about ``n * OVERDRAW`` keys are
  in hand; ``n`` of them are picked at random.

Why arcs of a fixed length and not "the next ``k`` keys": for a given store the hash is fixed,
so the randomness is only in the starting points. The key after a random point is picked with a
chance proportional to the gap before it, and a long run of keys shares most of its profiles
with the runs of nearby points; both tie the estimate to how this store's hashes happen to
fall (one run of 60 keys in a sandbox of 400 covered the truth with a "95 %" interval 80 % of
the time). A key lies in an arc of fixed length with the same chance wherever it sits, so every
profile is equally likely to be in the sample, and many short arcs from independent points
behave as independent draws.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable

from tessera.store import PointStore, WriteBatch, key
from tessera.store.base import KEY_SEP

SAMPLE = "profile_sample"
_HASH = hashlib.blake2b(digest_size=8, person=b"tessera-sample")  # copied per id, never updated
SCAN_ALL_FACTOR = 10
"""Up to this many times the sample size, the whole order is read and an exact simple random
sample taken from it."""
RUN = 10
"""Keys per arc of the hash circle, on average, in larger sandboxes."""
OVERDRAW = 1.25
"""Arcs hold this many times the sample size on average, so that ``n`` keys are in hand in all
but freak draws; the ``n`` are then picked at random among them."""
_CIRCLE = 2**64
PAGE = RUN + RUN // 2
"""Keys read per call along an arc: most arcs end within the first page."""


def sample_key(profile_id: str) -> str:
    """The ``profile_sample`` key of a profile.

    >>> digest, profile_id = sample_key("i-RW1haWwfYUBiLmM").split("\\x1f")
    >>> len(digest), profile_id
    (16, 'i-RW1haWwfYUBiLmM')
    """
    h = _HASH.copy()
    h.update(profile_id.encode())
    return key(h.hexdigest(), profile_id)


def put(wb: WriteBatch, profile_id: str) -> None:
    """Add a stored profile to the sample order (idempotent)."""
    wb.put(SAMPLE, sample_key(profile_id), b"")


def delete(wb: WriteBatch, profile_id: str) -> None:
    """Remove a deleted profile from the sample order."""
    wb.delete(SAMPLE, sample_key(profile_id))


def draw(store: PointStore, n: int, rng: random.Random, total: int | None = None) -> list[str]:
    """Up to ``n`` distinct profile ids, a uniform random sample in random order (all of them
    when the sandbox has ``n`` or fewer); see the module docstring for how.

    Args:
        store: the sandbox's point store.
        n: how many ids at most.
        rng: where the randomness comes from (seed it for a repeatable sample).
        total: :func:`count`, when the caller has it already.
    """
    if n <= 0:
        return []
    if total is None:
        total = count(store)
    if total <= n * SCAN_ALL_FACTOR:
        ids = [k.split(KEY_SEP, 1)[1] for k, _ in store.scan(SAMPLE)]
        if len(ids) > n:
            return rng.sample(ids, n)
        rng.shuffle(ids)  # an estimate may stop early: any prefix must be a random sample too
        return ids
    # arcs of the 2**64 hash circle long enough for RUN keys on average, a fixed number of them
    # (the sample never depends on what the profiles contain)
    length = max(1, (_CIRCLE * RUN) // total)
    picked: dict[str, None] = {}  # overlapping arcs find a key twice
    # arc sizes vary about RUN like Poisson counts: four standard deviations more make sure
    for _ in range(math.ceil((n * OVERDRAW + 4 * math.sqrt(n)) / RUN) + 1):
        lo = rng.getrandbits(64)
        hi = lo + length
        for k in _arc(store, lo, min(hi, _CIRCLE)):
            picked[k] = None
        if hi > _CIRCLE:  # the arc wraps past the end of the order
            for k in _arc(store, 0, hi - _CIRCLE):
                picked[k] = None
    ids = [k.split(KEY_SEP, 1)[1] for k in picked]
    if len(ids) > n:
        return rng.sample(ids, n)
    rng.shuffle(ids)
    return ids


def _arc(store: PointStore, lo: int, hi: int) -> list[str]:
    """Keys whose hash ``h`` has ``lo <= h < hi`` (``hi`` at most ``2**64``), read in small pages."""
    end = None if hi >= _CIRCLE else f"{hi:016x}"
    after = f"{lo:016x}"  # every key of hash lo sorts after its 16 digits alone
    found: list[str] = []
    while True:
        page = [k for k, _ in store.scan(SAMPLE, start_after=after, limit=PAGE)]
        for k in page:
            if end is not None and k >= end:
                return found
            found.append(k)
        if len(page) < PAGE:
            return found
        after = page[-1]


def count(store: PointStore) -> int:
    """How many profiles the sample order holds (the rows of ``profiles``), counted over keys of
    a few dozen bytes rather than over the profile documents."""
    return store.count(SAMPLE)


def backfill(store: PointStore, profile_ids: Iterable[str], chunk: int = 50_000) -> int:
    """Put every one of ``profile_ids`` into the sample order, ``chunk`` per write (a store
    written before the order existed); returns how many. Idempotent, so an interrupted run is
    simply run again."""
    done = 0
    wb = WriteBatch()
    for pid in profile_ids:
        put(wb, pid)
        done += 1
        if len(wb) >= chunk:
            store.write(wb)
            wb = WriteBatch()
    if len(wb):
        store.write(wb)
    return done


__all__ = [
    "OVERDRAW",
    "RUN",
    "SAMPLE",
    "SCAN_ALL_FACTOR",
    "backfill",
    "count",
    "delete",
    "draw",
    "put",
    "sample_key",
]
