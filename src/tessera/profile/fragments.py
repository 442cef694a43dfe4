"""Profile fragments: one primary identity's data in one dataset (``spec/aep.md`` §a1, §d1).

A :class:`Fragment` is one *version* of a record fragment: the XDM record stored for one
(dataset, primary identity) pair at one ingestion time. Re-ingesting a record replaces the
fragment; in upsert mode :func:`apply_upsert` updates only the supplied attributes. Every version
keeps its ingestion time, so :func:`version_at` can answer "as of time T".

An :class:`Event` is one ExperienceEvent stored under its primary identity.

Everything here is pure: no I/O, no clocks. All times are timezone-aware UTC; naive inputs are
taken to be UTC (see :func:`tessera.model.parse_time`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from tessera.errors import InvalidInput
from tessera.model import Identity, parse_time

PROFILE_CLASS = "_xdm.context.profile"
"""Schema class name of XDM Individual Profile, as merge policies spell it (``schema.name``)."""

EVENT_CLASS = "_xdm.context.experienceevent"
"""Schema class name of XDM ExperienceEvent."""

IDENTITY_MAP = "identityMap"
"""The one map whose entries are unioned across fragments instead of replaced as a whole."""

DEFAULT_MAP_PATHS: frozenset[str] = frozenset({IDENTITY_MAP, "segmentMembership"})
"""Dotted paths of objects that are XDM *maps* (free keys), merged as one atomic value.

Objects not listed here are XDM *objects*: their leaves are merged one by one. Callers that know
the union schema pass the map paths it declares (``meta:xdmType: map``).
"""

CUSTOM_TIMESTAMP_PATH = ("extSourceSystemAudit", "lastUpdatedDate")
"""Where the custom timestamp lives (field group *External Source System Audit Details*, §d2)."""


def schema_class_name(value: str) -> str:
    """Normalise a class id to the merge-policy spelling.

    >>> schema_class_name("https://ns.adobe.com/xdm/context/profile")
    '_xdm.context.profile'
    >>> schema_class_name("_xdm.context.experienceevent")
    '_xdm.context.experienceevent'
    """
    prefix = "https://ns.adobe.com/"
    if value.startswith(prefix):
        return "_" + value[len(prefix) :].replace("/", ".")
    return value


_JSON_LEAF = (str, int, float, list)  # JSON types that are never objects: skip the slow ABC check


class Leaf(NamedTuple):
    """One mergeable value of a record: a scalar, an array or a whole map."""

    dotted: str
    """Field path joined with dots, e.g. ``person.name.firstName`` (the provenance key)."""
    path: tuple[str, ...]
    """The same path as keys."""
    ancestors: tuple[str, ...]
    """Dotted paths of the enclosing objects, outermost first (used to detect shape conflicts)."""
    value: Any


def flatten(record: Mapping[str, Any], map_paths: frozenset[str] = DEFAULT_MAP_PATHS) -> tuple[Leaf, ...]:
    """The mergeable leaves of a record (each object's own values first, then its sub-objects).

    Objects are descended into; arrays and the maps named in ``map_paths`` are single leaves;
    ``None`` values and empty objects contribute nothing (XDM null means "not set"). The
    ``identityMap`` is left out: it is unioned separately.

    >>> [leaf.dotted for leaf in flatten({"person": {"name": {"firstName": "Jane"}}, "tags": ["a"]})]
    ['tags', 'person.name.firstName']
    """
    out: list[Leaf] = []
    make = tuple.__new__  # builds the NamedTuple at C speed (Leaf(...) goes through Python)
    # Explicit stack of (object, path, dotted, ancestors) in place of recursion: flattening runs
    # for every fragment read, so it is on the hot path. Records parsed from JSON are plain
    # dicts, hence the `type(...) is dict` fast path before the slower Mapping check.
    stack: list[tuple[Mapping[str, Any], tuple[str, ...], str, tuple[str, ...]]] = [(record, (), "", ())]
    while stack:
        obj, path, dotted, ancestors = stack.pop()
        pending: list[tuple[Mapping[str, Any], tuple[str, ...], str, tuple[str, ...]]] = []
        for key, value in obj.items():
            if value is None:
                continue
            sub_dotted = f"{dotted}.{key}" if dotted else key
            if sub_dotted == IDENTITY_MAP:
                continue
            if (
                type(value) is dict or (not isinstance(value, _JSON_LEAF) and isinstance(value, Mapping))
            ) and (sub_dotted not in map_paths):
                if value:
                    pending.append((value, (*path, key), sub_dotted, (*ancestors, sub_dotted)))
            else:
                out.append(make(Leaf, (sub_dotted, (*path, key), ancestors, value)))
        stack.extend(reversed(pending))
    return tuple(out)


def identity_entries(
    record: Mapping[str, Any], *, path: str = IDENTITY_MAP
) -> tuple[tuple[str, str, Mapping[str, Any]], ...]:
    """The ``identityMap`` entries of a record as (namespace, id, entry) triples.

    Raises:
        InvalidInput: the identityMap is not a map of arrays of objects with a string ``id``.

    >>> identity_entries({"identityMap": {"Email": [{"id": "a@x", "primary": True}]}})
    (('Email', 'a@x', {'id': 'a@x', 'primary': True}),)
    """
    imap = record.get(IDENTITY_MAP)
    if imap is None:
        return ()
    if not isinstance(imap, Mapping):
        raise InvalidInput("identityMap must be an object keyed by namespace", path=path)
    out: list[tuple[str, str, Mapping[str, Any]]] = []
    for namespace, entries in imap.items():
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise InvalidInput("identityMap values must be arrays of identities", path=f"{path}.{namespace}")
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
                raise InvalidInput(
                    "each identityMap entry must be an object with a string 'id'",
                    path=f"{path}.{namespace}[{i}]",
                )
            out.append((namespace, entry["id"], entry))
    return tuple(out)


def custom_timestamp_of(record: Mapping[str, Any]) -> datetime | None:
    """``extSourceSystemAudit.lastUpdatedDate`` of a record as aware UTC, or None when absent.

    Raises:
        InvalidInput: the field is present but is not a date-time.

    >>> custom_timestamp_of({"extSourceSystemAudit": {"lastUpdatedDate": "2024-05-01T00:00:00Z"}}).month
    5
    >>> custom_timestamp_of({}) is None
    True
    """
    audit = record.get(CUSTOM_TIMESTAMP_PATH[0])
    if not isinstance(audit, Mapping):
        return None
    raw = audit.get(CUSTOM_TIMESTAMP_PATH[1])
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"lastUpdatedDate must be an ISO-8601 date-time, got {raw!r}",
            path=".".join(CUSTOM_TIMESTAMP_PATH),
        ) from exc


def _require_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a datetime", path=name)
    return parse_time(value)


@dataclass(frozen=True, slots=True, eq=False)
class Fragment:
    """One version of a record fragment: one primary identity's record in one dataset.

    The record is owned by the fragment: do not mutate it after construction (its leaves are
    flattened once, here, so that every later merge is cheap).

    Args:
        dataset_id: the dataset the record was ingested into.
        identity: the record's primary identity.
        record: the XDM record (a JSON object).
        ingested_at: Platform ingestion time of this version (naive = UTC).
        sequence: a store-assigned number, increasing with every write; the last tiebreak of merge
            precedence (with dataset id and identity), so order never depends on list position.
        schema_class: the record's class, e.g. ``_xdm.context.profile`` (URI form accepted).
        custom_timestamp: overrides ingestion time for timestampOrdered merges; when None it is
            read from ``extSourceSystemAudit.lastUpdatedDate`` in the record.
        deleted: a tombstone version (the fragment was deleted at ``ingested_at``).
        map_paths: dotted paths of XDM maps in this record's schema (merged atomically).

    >>> from datetime import UTC
    >>> f = Fragment("CRM", Identity("CRMID", "c1"), {"person": {"maritalStatus": "single"}},
    ...              datetime(2024, 1, 1, tzinfo=UTC))
    >>> [leaf.dotted for leaf in f.leaves], f.timestamp.year
    (['person.maritalStatus'], 2024)
    """

    dataset_id: str
    identity: Identity
    record: Mapping[str, Any]
    ingested_at: datetime
    sequence: int = 0
    schema_class: str = PROFILE_CLASS
    custom_timestamp: datetime | None = None
    deleted: bool = False
    map_paths: frozenset[str] = DEFAULT_MAP_PATHS
    leaves: tuple[Leaf, ...] = field(init=False, repr=False)
    identities: tuple[tuple[str, str, Mapping[str, Any]], ...] = field(init=False, repr=False)
    """The record's identityMap entries as (namespace, id, entry)."""
    timestamp: datetime = field(init=False, repr=False)
    """The merge timestamp: ``custom_timestamp`` when present, else ``ingested_at``."""

    def __post_init__(self) -> None:
        if not isinstance(self.record, Mapping):
            raise InvalidInput("a fragment's record must be a JSON object", path="record")
        if not isinstance(self.identity, Identity):
            raise InvalidInput("a fragment's primary identity must be an Identity", path="identity")
        setter = object.__setattr__
        setter(self, "ingested_at", _require_aware(self.ingested_at, "ingested_at"))
        setter(self, "schema_class", schema_class_name(self.schema_class))
        custom = self.custom_timestamp
        custom = (
            custom_timestamp_of(self.record) if custom is None else _require_aware(custom, "custom_timestamp")
        )
        setter(self, "custom_timestamp", custom)
        setter(self, "timestamp", custom if custom is not None else self.ingested_at)
        setter(self, "leaves", flatten(self.record, self.map_paths))
        setter(self, "identities", identity_entries(self.record))

    @property
    def key(self) -> tuple[str, Identity]:
        """(dataset id, primary identity): what a fragment is the version of."""
        return (self.dataset_id, self.identity)


@dataclass(frozen=True, slots=True, eq=False)
class Event:
    """One ExperienceEvent, stored under its primary identity.

    Args:
        dataset_id: the ExperienceEvent dataset.
        identity: the event's primary identity.
        event_id: the record's ``_id`` (unique per dataset; a repeat is the same event).
        timestamp: the record's ``timestamp`` (aware UTC).
        record: the XDM record.
        ingested_at: Platform ingestion time, or None when unknown.
    """

    dataset_id: str
    identity: Identity
    event_id: str
    timestamp: datetime
    record: Mapping[str, Any]
    ingested_at: datetime | None = None

    @classmethod
    def from_record(
        cls,
        dataset_id: str,
        identity: Identity,
        record: Mapping[str, Any],
        ingested_at: datetime | None = None,
    ) -> Event:
        """Build an event from its XDM record, reading ``_id`` and ``timestamp``.

        Raises:
            InvalidInput: ``_id`` or ``timestamp`` is missing or malformed (Profile rejects such
                events, ``spec/aep.md`` §d5).

        >>> e = Event.from_record("Web", Identity("ECID", "e1"), {"_id": "E1", "timestamp": "2024-01-01T00:00:00Z"})
        >>> e.event_id, e.timestamp.day
        ('E1', 1)
        """
        event_id = record.get("_id")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidInput("an ExperienceEvent needs a non-empty string '_id'", path="_id")
        raw = record.get("timestamp")
        if raw is None:
            raise InvalidInput("an ExperienceEvent needs a 'timestamp'", path="timestamp")
        try:
            ts = parse_time(raw)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(
                f"timestamp must be an ISO-8601 date-time, got {raw!r}", path="timestamp"
            ) from exc
        return cls(
            dataset_id,
            identity,
            event_id,
            ts,
            record,
            None if ingested_at is None else parse_time(ingested_at),
        )


# --- upsert and replace -------------------------------------------------------------------------


def _copy_json(value: Any) -> Any:
    """Deep copy of JSON-shaped data (dicts, lists, scalars); several times faster than deepcopy."""
    if type(value) is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(v) for v in value]
    return value


def _parse_delete_path(path: str | Sequence[str]) -> tuple[str, ...]:
    parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise InvalidInput(f"not a field path: {path!r}", path="deletes")
    return parts


def _delete(doc: dict[str, Any], parts: tuple[str, ...]) -> None:
    # Remove the field, then prune objects left empty so no `{}` shells remain.
    trail: list[tuple[dict[str, Any], str]] = []
    node: Any = doc
    for part in parts[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return
        trail.append((node, part))
        node = child
    if isinstance(node, dict) and parts[-1] in node:
        del node[parts[-1]]
        for parent, key in reversed(trail):
            if parent[key]:
                break
            del parent[key]


def _union_identity_map(old: Any, new: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {ns: list(v) for ns, v in old.items()} if isinstance(old, Mapping) else {}
    for namespace, entries in new.items():
        if entries is None:
            continue
        current = out.setdefault(namespace, [])
        index = {e.get("id"): i for i, e in enumerate(current) if isinstance(e, Mapping)}
        for entry in entries:
            i = index.get(entry.get("id")) if isinstance(entry, Mapping) else None
            if i is None:
                current.append(entry)
            else:
                current[i] = entry
    return out


def _upsert_into(
    target: dict[str, Any], new: Mapping[str, Any], prefix: str, map_paths: frozenset[str]
) -> None:
    for key, value in new.items():
        if value is None:
            continue
        dotted = f"{prefix}.{key}" if prefix else key
        if dotted == IDENTITY_MAP and isinstance(value, Mapping):
            target[key] = _union_identity_map(target.get(key), value)
        elif isinstance(value, Mapping) and dotted not in map_paths:
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            _upsert_into(current, value, dotted, map_paths)
            if not current:
                del target[key]
        else:
            target[key] = _copy_json(value)


def apply_upsert(
    old_doc: Mapping[str, Any] | None,
    new_doc: Mapping[str, Any],
    deletes: Iterable[str | Sequence[str]] = (),
    *,
    map_paths: frozenset[str] = DEFAULT_MAP_PATHS,
) -> dict[str, Any]:
    """The record after an upsert: ``new_doc``'s attributes update ``old_doc``; nothing else changes.

    Objects are updated leaf by leaf; arrays and maps supplied in ``new_doc`` replace the stored
    value whole (array replacement is the documented upsert default, ``spec/aep.md`` §d2);
    ``identityMap`` entries are unioned by (namespace, id). ``None`` in ``new_doc`` means "not
    supplied". ``deletes`` lists field paths (dotted or as key sequences) removed explicitly;
    objects left empty are removed too. Inputs are not mutated.

    Raises:
        InvalidInput: a path is both deleted and supplied, or a delete path is malformed.

    >>> apply_upsert({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 9}}, deletes=["d"])
    {'a': {'b': 9, 'c': 2}}
    """
    parsed = [_parse_delete_path(p) for p in deletes]
    supplied = {leaf.path for leaf in flatten(new_doc, map_paths)}
    for parts in parsed:
        for path in supplied:
            shorter = min(len(parts), len(path))
            if parts[:shorter] == path[:shorter]:
                raise InvalidInput(
                    f"field {'.'.join(parts)} is both deleted and supplied in one upsert",
                    path=".".join(parts),
                )
        if parts[0] == IDENTITY_MAP and IDENTITY_MAP in new_doc:
            raise InvalidInput("identityMap is both deleted and supplied in one upsert", path=".".join(parts))
    doc: dict[str, Any] = _copy_json(old_doc) if old_doc else {}
    for parts in parsed:
        _delete(doc, parts)
    _upsert_into(doc, new_doc, "", map_paths)
    return doc


def apply_record(
    old_doc: Mapping[str, Any] | None,
    new_doc: Mapping[str, Any],
    *,
    upsert: bool,
    deletes: Iterable[str | Sequence[str]] = (),
    map_paths: frozenset[str] = DEFAULT_MAP_PATHS,
) -> dict[str, Any]:
    """The stored record after ingesting ``new_doc``: replaced whole, or upserted in upsert mode.

    Raises:
        InvalidInput: deletes given for a dataset not in upsert mode, or see :func:`apply_upsert`.

    >>> apply_record({"a": 1}, {"b": 2}, upsert=False)
    {'b': 2}
    >>> apply_record({"a": 1}, {"b": 2}, upsert=True)
    {'a': 1, 'b': 2}
    """
    if upsert:
        return apply_upsert(old_doc, new_doc, deletes, map_paths=map_paths)
    if any(True for _ in deletes):
        raise InvalidInput("explicit field deletes need a dataset in upsert mode", path="deletes")
    copied: dict[str, Any] = _copy_json(new_doc)
    return copied


# --- as-of reads --------------------------------------------------------------------------------


def version_at(versions: Iterable[Fragment], at: datetime) -> Fragment | None:
    """The version of one fragment that was current at time ``at`` (inclusive), or None.

    The latest version by (ingestion time, sequence) with ``ingested_at <= at`` wins; None when
    no version existed yet or the current one is a tombstone. Input order does not matter.

    >>> from datetime import UTC
    >>> v1 = Fragment("CRM", Identity("CRMID", "c1"), {"a": 1}, datetime(2024, 1, 1, tzinfo=UTC), sequence=1)
    >>> v2 = Fragment("CRM", Identity("CRMID", "c1"), {"a": 2}, datetime(2024, 2, 1, tzinfo=UTC), sequence=2)
    >>> version_at([v2, v1], datetime(2024, 1, 15, tzinfo=UTC)).record
    {'a': 1}
    >>> version_at([v2, v1], datetime(2023, 1, 1, tzinfo=UTC)) is None
    True
    """
    at = parse_time(at)
    best: Fragment | None = None
    for version in versions:
        if version.ingested_at <= at and (
            best is None or (version.ingested_at, version.sequence) > (best.ingested_at, best.sequence)
        ):
            best = version
    if best is None or best.deleted:
        return None
    return best


def fragments_as_of(versions: Iterable[Fragment], at: datetime) -> list[Fragment]:
    """From all versions of many fragments, those current at time ``at``, ordered by key.

    >>> from datetime import UTC
    >>> t = datetime(2024, 1, 1, tzinfo=UTC)
    >>> vs = [Fragment("CRM", Identity("CRMID", "c1"), {}, t), Fragment("Loy", Identity("Email", "j"), {}, t)]
    >>> [f.dataset_id for f in fragments_as_of(vs, t)]
    ['CRM', 'Loy']
    """
    groups: dict[tuple[str, Identity], list[Fragment]] = {}
    for version in versions:
        groups.setdefault(version.key, []).append(version)
    out: list[Fragment] = []
    for key in sorted(groups):
        current = version_at(groups[key], at)
        if current is not None:
            out.append(current)
    return out
