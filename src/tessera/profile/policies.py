"""Merge policies: the documented object (``spec/aep.md`` §b2) and a pure in-memory manager.

:class:`MergePolicy` is one policy, validated, with ``to_json``/``from_json`` in the reference
API's shape. :class:`MergePolicyBook` manages the policies of many sandboxes in memory with the
documented rules (§a4, §d4, §e3): one default per schema class (a new default demotes the old),
at most one policy active on edge, ``version`` incremented on every change, a maximum count,
and a built-in default created on first use. It does no I/O: the caller persists
:meth:`MergePolicyBook.to_json` after each change.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, cast

from tessera.errors import Conflict, InvalidInput, NotFound, SemanticError
from tessera.model import utcnow
from tessera.profile.fragments import PROFILE_CLASS, schema_class_name

IdentityGraphType = Literal["none", "pdg"]
AttributeMergeType = Literal["timestampOrdered", "dataSetPrecedence"]

IDENTITY_GRAPH_TYPES: tuple[str, ...] = ("none", "pdg")
ATTRIBUTE_MERGE_TYPES: tuple[str, ...] = ("timestampOrdered", "dataSetPrecedence")
DEFAULT_MAX_POLICIES = 5
"""Merge policies per sandbox (§e3: 5 per org; we scope organisations to sandboxes)."""
MAX_ORDERED_DATASETS = 50
"""Profile datasets that ``attributeMerge.order`` may rank (§e3)."""
BUILTIN_DEFAULT_NAME = "tessera-default"

_BODY_KEYS = frozenset(
    {"name", "schema", "identityGraph", "attributeMerge", "default", "isActiveOnEdge", "activeOnEdge"}
)
_READ_ONLY_KEYS = frozenset({"id", "imsOrgId", "sandbox", "version", "updateEpoch"})


@dataclass(frozen=True, slots=True)
class SandboxRef:
    """The ``sandbox`` block of a policy.

    >>> SandboxRef.named("prod").to_json()["type"]
    'production'
    """

    sandbox_id: str
    sandbox_name: str
    type: str = "production"
    default: bool = False

    @classmethod
    def named(cls, name: str) -> SandboxRef:
        """A sandbox reference from a name alone; ``prod`` is the default production sandbox."""
        return cls(name, name, "production" if name == "prod" else "development", name == "prod")

    def to_json(self) -> dict[str, Any]:
        return {
            "sandboxId": self.sandbox_id,
            "sandboxName": self.sandbox_name,
            "type": self.type,
            "default": self.default,
        }


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """One merge policy (``spec/aep.md`` §b2).

    Build it from a request body with :meth:`MergePolicyBook.create` or from a stored object with
    :meth:`from_json`; both validate.

    Attributes:
        id: policy id (a UUID string).
        name: display name, unique within the sandbox.
        sandbox: the sandbox the policy belongs to.
        schema_name: the schema class it applies to, e.g. ``_xdm.context.profile``.
        identity_graph: ``none`` (only the requested identity) or ``pdg`` (the private graph).
        attribute_merge: ``timestampOrdered`` or ``dataSetPrecedence``.
        order: dataset ids, highest priority first. Required for dataSetPrecedence, where datasets
            not listed are not merged at all; for timestampOrdered it only breaks timestamp ties.
        default: the default policy of its schema class in its sandbox.
        is_active_on_edge: the one policy used by edge and streaming audiences.
        version: starts at 1, incremented on every change (read-only to clients).
        update_epoch: time of the last change, epoch seconds.
        ims_org_id: owning organisation id (opaque).
    """

    id: str
    name: str
    sandbox: SandboxRef
    schema_name: str = PROFILE_CLASS
    identity_graph: IdentityGraphType = "pdg"
    attribute_merge: AttributeMergeType = "timestampOrdered"
    order: tuple[str, ...] = ()
    default: bool = False
    is_active_on_edge: bool = False
    version: int = 1
    update_epoch: int = 0
    ims_org_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """The reference API object.

        >>> p = MergePolicy("p1", "n", SandboxRef.named("prod"))
        >>> p.to_json()["attributeMerge"], p.to_json()["identityGraph"]
        ({'type': 'timestampOrdered'}, {'type': 'pdg'})
        """
        attribute_merge: dict[str, Any] = {"type": self.attribute_merge}
        if self.order or self.attribute_merge == "dataSetPrecedence":
            attribute_merge["order"] = list(self.order)
        return {
            "id": self.id,
            "name": self.name,
            "imsOrgId": self.ims_org_id,
            "sandbox": self.sandbox.to_json(),
            "schema": {"name": self.schema_name},
            "version": self.version,
            "identityGraph": {"type": self.identity_graph},
            "attributeMerge": attribute_merge,
            "isActiveOnEdge": self.is_active_on_edge,
            "default": self.default,
            "updateEpoch": self.update_epoch,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> MergePolicy:
        """Parse a stored policy object (as written by :meth:`to_json`).

        Raises:
            InvalidInput: a field is missing or malformed; ``path`` names it.
        """
        if not isinstance(obj, Mapping):
            raise InvalidInput("a merge policy must be a JSON object", path="")
        fields = _parse_body(obj, allow_read_only=True)
        policy_id = obj.get("id")
        if not isinstance(policy_id, str) or not policy_id:
            raise InvalidInput("id must be a non-empty string", path="id")
        version = obj.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInput("version must be a positive integer", path="version")
        epoch = obj.get("updateEpoch", 0)
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise InvalidInput("updateEpoch must be an integer (epoch seconds)", path="updateEpoch")
        org = obj.get("imsOrgId", "")
        if not isinstance(org, str):
            raise InvalidInput("imsOrgId must be a string", path="imsOrgId")
        return cls(
            id=policy_id,
            sandbox=_parse_sandbox(obj.get("sandbox")),
            version=version,
            update_epoch=epoch,
            ims_org_id=org,
            **fields,
        )


def _parse_sandbox(raw: Any) -> SandboxRef:
    if isinstance(raw, str) and raw:
        return SandboxRef.named(raw)
    if not isinstance(raw, Mapping):
        raise InvalidInput("sandbox must be an object with sandboxName", path="sandbox")
    name = raw.get("sandboxName")
    if not isinstance(name, str) or not name:
        raise InvalidInput("sandbox.sandboxName must be a non-empty string", path="sandbox.sandboxName")
    sid = raw.get("sandboxId", name)
    kind = raw.get("type", "production" if name == "prod" else "development")
    default = raw.get("default", name == "prod")
    if not isinstance(sid, str) or not isinstance(kind, str) or not isinstance(default, bool):
        raise InvalidInput("sandbox has malformed sandboxId/type/default", path="sandbox")
    return SandboxRef(sid, name, kind, default)


def _as_bool(value: Any, path: str) -> bool:
    # The reference PATCH example sends booleans as strings ("value": "true").
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"{path} must be true or false, got {value!r}", path=path)


def _typed_block(
    body: Mapping[str, Any], key: str, allowed: tuple[str, ...]
) -> tuple[Mapping[str, Any], str]:
    block = body.get(key)
    if not isinstance(block, Mapping):
        raise InvalidInput(f"{key} must be an object with a 'type' ({' | '.join(allowed)})", path=key)
    kind = block.get("type")
    if kind not in allowed:
        raise InvalidInput(
            f"{key}.type must be one of {', '.join(allowed)}; got {kind!r}", path=f"{key}.type"
        )
    return block, cast(str, kind)


def _parse_order(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInput(
            "attributeMerge.order must be an array of dataset ids", path="attributeMerge.order"
        )
    seen: set[str] = set()
    for i, ds in enumerate(raw):
        path = f"attributeMerge.order[{i}]"
        if not isinstance(ds, str) or not ds:
            raise InvalidInput("dataset ids in order must be non-empty strings", path=path)
        if ds in seen:
            raise InvalidInput(f"dataset {ds} is listed twice in order", path=path)
        seen.add(ds)
    if len(raw) > MAX_ORDERED_DATASETS:
        raise InvalidInput(
            f"order may rank at most {MAX_ORDERED_DATASETS} datasets, got {len(raw)}",
            path="attributeMerge.order",
        )
    return tuple(raw)


def _parse_body(body: Mapping[str, Any], *, allow_read_only: bool) -> dict[str, Any]:
    """Validate the client-settable fields of a policy body into MergePolicy keyword arguments."""
    for key in body:
        if key in _BODY_KEYS or (key in _READ_ONLY_KEYS and allow_read_only):
            continue
        if key in _READ_ONLY_KEYS:
            continue  # clients often send back what they read; read-only fields are ignored
        raise InvalidInput(f"unknown merge policy field {key!r}", path=key)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string", path="name")
    schema = body.get("schema", {"name": PROFILE_CLASS})
    if not isinstance(schema, Mapping) or not isinstance(schema.get("name"), str) or not schema["name"]:
        raise InvalidInput(
            "schema must be an object with a class name, e.g. _xdm.context.profile", path="schema.name"
        )
    _, graph = _typed_block(body, "identityGraph", IDENTITY_GRAPH_TYPES)
    merge_block, merge_type = _typed_block(body, "attributeMerge", ATTRIBUTE_MERGE_TYPES)
    extra = set(merge_block) - {"type", "order"}
    if extra:
        raise InvalidInput(
            f"unknown attributeMerge field {sorted(extra)[0]!r}", path=f"attributeMerge.{sorted(extra)[0]}"
        )
    order = _parse_order(merge_block.get("order"))
    if merge_type == "dataSetPrecedence" and not order:
        raise InvalidInput(
            "dataSetPrecedence needs attributeMerge.order: the dataset ids, highest priority first",
            path="attributeMerge.order",
        )
    edge_key = "isActiveOnEdge" if "isActiveOnEdge" in body else "activeOnEdge"
    return {
        "name": name.strip(),
        "schema_name": schema_class_name(schema["name"]),
        "identity_graph": graph,
        "attribute_merge": merge_type,
        "order": order,
        "default": _as_bool(body.get("default", False), "default"),
        "is_active_on_edge": _as_bool(body.get(edge_key, False), edge_key),
    }


# JSON-Patch paths the reference API accepts, in both its dotted spelling and pointer form.
_PATCH_PATHS: dict[str, tuple[str, ...]] = {
    "/name": ("name",),
    "/identityGraph.type": ("identityGraph", "type"),
    "/identityGraph/type": ("identityGraph", "type"),
    "/attributeMerge.type": ("attributeMerge", "type"),
    "/attributeMerge/type": ("attributeMerge", "type"),
    "/attributeMerge.order": ("attributeMerge", "order"),
    "/attributeMerge/order": ("attributeMerge", "order"),
    "/schema.name": ("schema", "name"),
    "/schema/name": ("schema", "name"),
    "/version": ("version",),
    "/default": ("default",),
    "/isActiveOnEdge": ("isActiveOnEdge",),
}


class MergePolicyBook:
    """Pure in-memory manager of merge policies across sandboxes.

    Args:
        policies: the stored policies to start from (e.g. loaded by the caller).
        max_policies: the most policies one sandbox may hold (default 5, ``spec/aep.md`` §e3).
        clock: source of ``updateEpoch`` (aware UTC).
        new_id: source of new policy ids.
        ims_org_id: written into new policies.

    >>> book = MergePolicyBook(new_id=lambda: "p1")
    >>> p = book.create({"name": "crm-first", "identityGraph": {"type": "pdg"},
    ...                  "attributeMerge": {"type": "dataSetPrecedence", "order": ["CRM"]}}, sandbox="prod")
    >>> p.version, book.patch("p1", {"op": "replace", "path": "/name", "value": "crm"}).version
    (1, 2)
    """

    def __init__(
        self,
        policies: Iterable[MergePolicy] = (),
        *,
        max_policies: int = DEFAULT_MAX_POLICIES,
        clock: Callable[[], datetime] = utcnow,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        ims_org_id: str = "",
    ) -> None:
        if max_policies < 1:
            raise InvalidInput("max_policies must be at least 1", path="max_policies")
        self._policies: dict[str, MergePolicy] = {p.id: p for p in policies}
        self.max_policies = max_policies
        self._clock = clock
        self._new_id = new_id
        self._ims_org_id = ims_org_id

    # --- reads ----------------------------------------------------------------------------------

    @property
    def policies(self) -> Mapping[str, MergePolicy]:
        """A snapshot of every policy by id."""
        return dict(self._policies)

    def get(self, policy_id: str, *, sandbox: str | None = None) -> MergePolicy:
        """One policy by id.

        Raises:
            NotFound: no such policy (in ``sandbox``, when given).
        """
        policy = self._policies.get(policy_id)
        if policy is None or (sandbox is not None and policy.sandbox.sandbox_name != sandbox):
            raise NotFound(f"merge policy {policy_id} does not exist", path="id")
        return policy

    def bulk_get(
        self, ids: Iterable[str], *, sandbox: str | None = None
    ) -> dict[str, MergePolicy | NotFound]:
        """Many policies at once: each id maps to its policy or to the NotFound error (a 207 body)."""
        out: dict[str, MergePolicy | NotFound] = {}
        for policy_id in ids:
            try:
                out[policy_id] = self.get(policy_id, sandbox=sandbox)
            except NotFound as exc:
                out[policy_id] = exc
        return out

    def list(
        self,
        *,
        sandbox: str | None = None,
        schema_name: str | None = None,
        default: bool | None = None,
        is_active_on_edge: bool | None = None,
        identity_graph: str | None = None,
        attribute_merge: str | None = None,
        order_by: str = "name",
    ) -> list[MergePolicy]:
        """Policies matching every given filter, ordered by name (``-name`` for descending), then id.

        Raises:
            InvalidInput: ``order_by`` is not ``name``, ``+name`` or ``-name``.
        """
        if order_by not in ("name", "+name", "-name"):
            raise InvalidInput("orderBy must be name, +name or -name", path="orderBy")
        schema = None if schema_name is None else schema_class_name(schema_name)
        found = [
            p
            for p in self._policies.values()
            if (sandbox is None or p.sandbox.sandbox_name == sandbox)
            and (schema is None or p.schema_name == schema)
            and (default is None or p.default == default)
            and (is_active_on_edge is None or p.is_active_on_edge == is_active_on_edge)
            and (identity_graph is None or p.identity_graph == identity_graph)
            and (attribute_merge is None or p.attribute_merge == attribute_merge)
        ]
        found.sort(key=lambda p: (p.name, p.id), reverse=order_by == "-name")
        return found

    def default_for(self, sandbox: str, schema_name: str = PROFILE_CLASS) -> MergePolicy:
        """The default policy of a schema class; the built-in one is created on first use.

        The built-in default (timestampOrdered, pdg) is created only while the sandbox has no
        policy for the class at all; once policies exist, having none marked default is an error.

        Raises:
            SemanticError: policies exist for the class but none is the default (the API's 422).
        """
        schema = schema_class_name(schema_name)
        in_class = [
            p
            for p in self._policies.values()
            if p.sandbox.sandbox_name == sandbox and p.schema_name == schema
        ]
        for policy in in_class:
            if policy.default:
                return policy
        if in_class:
            raise SemanticError(
                f"sandbox {sandbox} has no default merge policy for {schema}; mark one as default",
                path="mergePolicyId",
            )
        return self.create(
            {
                "name": BUILTIN_DEFAULT_NAME
                if schema == PROFILE_CLASS
                else f"{BUILTIN_DEFAULT_NAME}-{schema}",
                "schema": {"name": schema},
                "identityGraph": {"type": "pdg"},
                "attributeMerge": {"type": "timestampOrdered"},
                "default": True,
            },
            sandbox=sandbox,
        )

    def resolve(
        self, sandbox: str, policy_id: str | None = None, schema_name: str = PROFILE_CLASS
    ) -> MergePolicy:
        """The policy a lookup uses: the given id, or the class default.

        Raises:
            NotFound: ``policy_id`` is unknown in this sandbox.
            SemanticError: no id given and the class has no default.
        """
        if policy_id is not None:
            return self.get(policy_id, sandbox=sandbox)
        return self.default_for(sandbox, schema_name)

    # --- writes ---------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any], *, sandbox: str | SandboxRef) -> MergePolicy:
        """Create a policy from a request body (``name``, ``identityGraph``, ``attributeMerge``, ...).

        Raises:
            InvalidInput: the body is malformed (``path`` names the field).
            Conflict: the name is taken, or another policy is already active on edge.
            SemanticError: the sandbox already holds ``max_policies`` policies.
        """
        if not isinstance(body, Mapping):
            raise InvalidInput("a merge policy must be a JSON object", path="")
        ref = sandbox if isinstance(sandbox, SandboxRef) else SandboxRef.named(sandbox)
        fields = _parse_body(body, allow_read_only=False)
        count = sum(1 for p in self._policies.values() if p.sandbox.sandbox_name == ref.sandbox_name)
        if count >= self.max_policies:
            raise SemanticError(
                f"sandbox {ref.sandbox_name} already has {count} merge policies; the limit is {self.max_policies}",
                path="mergePolicies",
                limit=self.max_policies,
            )
        policy = MergePolicy(
            id=self._new_id(), sandbox=ref, update_epoch=self._epoch(), ims_org_id=self._ims_org_id, **fields
        )
        if policy.id in self._policies:
            raise Conflict(f"merge policy id {policy.id} already exists", path="id")
        return self._commit(policy, previous=None)

    def replace(self, policy_id: str, body: Mapping[str, Any]) -> MergePolicy:
        """PUT: replace every client-settable field of a policy.

        Raises:
            NotFound: no such policy.
            InvalidInput: the body is malformed, or its ``id`` differs from ``policy_id``.
            Conflict: see :meth:`create`.
        """
        current = self.get(policy_id)
        if not isinstance(body, Mapping):
            raise InvalidInput("a merge policy must be a JSON object", path="")
        if "id" in body and body["id"] != policy_id:
            raise InvalidInput(f"body id {body['id']!r} does not match {policy_id}", path="id")
        fields = _parse_body(body, allow_read_only=False)
        return self._commit(replace(current, **fields), previous=current)

    def patch(self, policy_id: str, ops: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> MergePolicy:
        """PATCH with JSON-Patch operations (``op`` add | replace | remove, ``path``, ``value``).

        Allowed paths are the reference API's: ``/name``, ``/identityGraph.type``,
        ``/attributeMerge.type``, ``/schema.name``, ``/default``, ``/isActiveOnEdge`` (``/`` may
        replace ``.``), plus ``/attributeMerge.order``. ``/version`` is a precondition: its value
        must equal the current version, so a client can refuse to overwrite a newer change.

        Raises:
            NotFound: no such policy.
            InvalidInput: an op is malformed or its path is not patchable (``path`` is the op's).
            Conflict: a stale ``/version``, or see :meth:`create`.
        """
        current = self.get(policy_id)
        op_list = [ops] if isinstance(ops, Mapping) else list(ops)
        if not op_list:
            raise InvalidInput("PATCH needs at least one operation", path="")
        doc = current.to_json()
        for i, op in enumerate(op_list):
            where = f"[{i}]" if len(op_list) > 1 else ""
            if not isinstance(op, Mapping):
                raise InvalidInput("a patch operation must be an object", path=where or "/")
            kind, path = op.get("op"), op.get("path")
            if kind not in ("add", "replace", "remove"):
                raise InvalidInput(
                    f"op must be add, replace or remove; got {kind!r}", path=f"{where}.op".lstrip(".")
                )
            target = _PATCH_PATHS.get(path) if isinstance(path, str) else None
            if target is None:
                allowed = ", ".join(p for p in _PATCH_PATHS if "/" not in p[1:])
                raise InvalidInput(f"path {path!r} cannot be patched; allowed: {allowed}", path=str(path))
            if target == ("version",):
                if kind == "remove" or op.get("value") not in (current.version, str(current.version)):
                    raise Conflict(
                        f"merge policy {policy_id} is at version {current.version}, not {op.get('value')!r}",
                        path="/version",
                    )
                continue
            if kind == "remove":
                if target != ("attributeMerge", "order"):
                    raise InvalidInput(f"{path} cannot be removed", path=str(path))
                doc["attributeMerge"].pop("order", None)
                continue
            if "value" not in op:
                raise InvalidInput(f"{kind} needs a value", path=str(path))
            node = doc
            for key in target[:-1]:
                node = node.setdefault(key, {})
            node[target[-1]] = op["value"]
        fields = _parse_body(doc, allow_read_only=True)
        updated = replace(current, **fields)
        if updated == current:
            return current
        return self._commit(updated, previous=current)

    def delete(self, policy_id: str) -> MergePolicy:
        """Delete a policy and return it.

        Raises:
            NotFound: no such policy.
            Conflict: the policy is active on edge (refused by the reference API).
        """
        current = self.get(policy_id)
        if current.is_active_on_edge:
            raise Conflict(
                f"merge policy {policy_id} is active on edge; activate another policy on edge first",
                path="isActiveOnEdge",
            )
        del self._policies[policy_id]
        return current

    # --- persistence helpers --------------------------------------------------------------------

    def to_json(self) -> builtins.list[dict[str, Any]]:
        """Every policy as reference objects, ordered by id (for the caller to persist)."""
        return [self._policies[k].to_json() for k in sorted(self._policies)]

    @classmethod
    def from_json(cls, objs: Iterable[Mapping[str, Any]], **kwargs: Any) -> MergePolicyBook:
        """A book from persisted objects; keyword arguments as for the constructor."""
        return cls([MergePolicy.from_json(o) for o in objs], **kwargs)

    # --- internals ------------------------------------------------------------------------------

    def _epoch(self) -> int:
        return int(self._clock().timestamp())

    def _commit(self, policy: MergePolicy, *, previous: MergePolicy | None) -> MergePolicy:
        """Check the cross-policy rules, apply the change, demote an old default, bump versions."""
        sandbox = policy.sandbox.sandbox_name
        peers = [
            p for p in self._policies.values() if p.id != policy.id and p.sandbox.sandbox_name == sandbox
        ]
        for peer in peers:
            if peer.name == policy.name:
                raise Conflict(
                    f"a merge policy named {policy.name!r} already exists in {sandbox}", path="name"
                )
            if peer.is_active_on_edge and policy.is_active_on_edge:
                raise Conflict(
                    f"merge policy {peer.name!r} is already active on edge in {sandbox}; deactivate it first",
                    path="isActiveOnEdge",
                )
        epoch = self._epoch()
        if policy.default:
            # One default per schema class: the new default demotes the old (§d4).
            for peer in peers:
                if peer.default and peer.schema_name == policy.schema_name:
                    self._policies[peer.id] = replace(
                        peer, default=False, version=peer.version + 1, update_epoch=epoch
                    )
        if previous is not None:
            policy = replace(policy, version=previous.version + 1, update_epoch=epoch)
        self._policies[policy.id] = policy
        return policy
