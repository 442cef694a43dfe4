"""Merge policies of one sandbox, persisted in its point store.

The rules (one default per class, versions, limits, PATCH paths) live in the pure
:class:`~tessera.profile.policies.MergePolicyBook`; this module loads the book, applies one
change and writes back exactly the policies that changed, under the sandbox's write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from tessera.catalog.ids import new_id
from tessera.errors import NotFound
from tessera.profile.fragments import PROFILE_CLASS
from tessera.profile.policies import MergePolicy, MergePolicyBook, SandboxRef
from tessera.store import WriteBatch

if TYPE_CHECKING:
    from tessera.platform import Sandbox

POLICIES = "merge_policies"


class MergePolicyService:
    """Create, read, update and delete merge policies; find the default of a class."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._cache: MergePolicyBook | None = None
        self._persisted: set[str] | None = None
        """Ids of the policies known to be in the store: lookups ask for the default policy on
        every call, and a store scan there cost more than the rest of the lookup."""

    def _book(self) -> MergePolicyBook:
        if self._cache is None:
            docs = [orjson.loads(raw) for _, raw in self._sandbox.store.scan(POLICIES)]
            self._cache = MergePolicyBook.from_json(
                docs, max_policies=self._sandbox.settings.max_merge_policies, new_id=lambda: _uuid()
            )
        return self._cache

    def _change(self, action: Callable[[MergePolicyBook], MergePolicy]) -> MergePolicy:
        with self._sandbox.write_lock:
            book = self._book()
            before = {pid: p.to_json() for pid, p in book.policies.items()}
            try:
                result = action(book)
            except Exception:
                self._cache = None
                self._persisted = None
                raise
            after = {pid: p.to_json() for pid, p in book.policies.items()}
            wb = WriteBatch()
            for pid, doc in after.items():
                if before.get(pid) != doc:
                    wb.put_json(POLICIES, pid, doc)
            for pid in before.keys() - after.keys():
                wb.delete(POLICIES, pid)
            try:
                self._sandbox.store.write(wb)
            except Exception:
                self._cache = None
                self._persisted = None
                raise
            if self._persisted is not None:
                self._persisted = (self._persisted | after.keys()) - (before.keys() - after.keys())
            return result

    def _ref(self) -> SandboxRef:
        return SandboxRef(
            sandbox_id=self._sandbox.name,
            sandbox_name=self._sandbox.name,
            type="production" if self._sandbox.name == "prod" else "development",
            default=self._sandbox.name == "prod",
        )

    def default_for(self, schema_name: str = PROFILE_CLASS) -> MergePolicy:
        """The class default; the built-in (timestampOrdered + pdg) is created on first use."""
        book = self._book()
        try:
            return book.default_for(self._sandbox.name, schema_name)
        finally:
            self._persist_new(book)

    def _persist_new(self, book: MergePolicyBook) -> None:
        known = self._persisted
        if known is not None and known.issuperset(book.policies):
            return
        stored = {k for k, _ in self._sandbox.store.scan(POLICIES)}
        missing = [p for pid, p in book.policies.items() if pid not in stored]
        if missing:
            wb = WriteBatch()
            for p in missing:
                wb.put_json(POLICIES, p.id, p.to_json())
            self._sandbox.store.write(wb)
        self._persisted = stored | {p.id for p in missing}

    def get(self, policy_id: str) -> MergePolicy:
        return self._book().get(policy_id)

    def list(self, **filters: Any) -> list[MergePolicy]:
        self.default_for(PROFILE_CLASS)
        return self._book().list(sandbox=self._sandbox.name, **filters)

    def bulk_get(self, ids: Iterable[str]) -> dict[str, MergePolicy | NotFound]:
        return self._book().bulk_get(ids)

    def create(self, body: Mapping[str, Any]) -> MergePolicy:
        self.default_for(PROFILE_CLASS)
        return self._change(lambda book: book.create(body, sandbox=self._ref()))

    def replace(self, policy_id: str, body: Mapping[str, Any]) -> MergePolicy:
        return self._change(lambda book: book.replace(policy_id, body))

    def patch(self, policy_id: str, ops: Any) -> MergePolicy:
        return self._change(lambda book: book.patch(policy_id, ops))

    def delete(self, policy_id: str) -> MergePolicy:
        return self._change(lambda book: book.delete(policy_id))


def _uuid() -> str:
    raw = new_id() + new_id()[:8]
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"
