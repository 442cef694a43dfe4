"""Deterministic, fast, multi-dataset retail demo data.

People are generated in fixed-size cohorts of ``COHORT`` people. Each cohort draws from its own
random stream, seeded by ``(seed, cohort number, purpose)``, so a record depends only on the seed,
the reference time and the cohort it belongs to: the first 1,000 people are the same whether 1,000
or 1,000,000 are asked for, and every dataset agrees on who a person is without keeping the whole
population in memory. Determinism holds for a given version of this package and of NumPy (its
``Generator`` algorithms may change between NumPy releases).

Which identities a record carries is decided by construction so the ground truth is exact:

* every CRM profile carries CRMID (primary), Email and Phone;
* the first web session on each of a person's browser ECIDs is a login (ECID + CRMID), later
  sessions are anonymous (ECID only); anonymous visitors have ECIDs no login ever links;
* the first mobile event of an app user is logged in (app ECID + IDFA/GAID + CRMID);
* shared devices: some households share a browser ECID or a tablet (ECID + IDFA) between 2-3
  people, each of whom logs in on it;
* junk ids: a few people give ``test@test.com`` at the till (offline purchase with CRMID + Email)
  or have ``000-000-0000`` as phone in the CRM, so one Email / Phone node touches many CRMIDs
  unless CRMID is a unique namespace in the linking rules.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from tessera.model import Identity, format_time

from . import vocab

COHORT = 1000
"""People per cohort (a unit of determinism and of work)."""

REFERENCE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
"""Default "now" of the demo: events fall in the 90 days before it."""

WINDOW_DAYS = 90
_COHORT_CACHE = 32
TENANT = "_tessera"

Record = dict[str, Any]

_DAY_MS = 86_400_000
_PHONE_SPACE = 8_000_000_000  # 10-digit numbers 2000000000..9999999999
_PHONE_MULT = 2_654_435_761  # odd and not a multiple of 5: a bijection modulo 8e9

# Purposes of the random streams (part of the seed; never reorder).
_P_PEOPLE, _P_SESSIONS, _P_WEB, _P_MOBILE, _P_OFFLINE, _P_CALLS, _P_LOYALTY = range(7)

_WEB_TYPES = (
    "web.webpagedetails.pageViews",
    "commerce.productViews",
    "commerce.productListAdds",
    "commerce.purchases",
)
_WEB_TYPE_P = np.array([0.45, 0.35, 0.13, 0.07])
_MOBILE_TYPES = (
    "application.launch",
    "commerce.productViews",
    "commerce.productListAdds",
    "commerce.purchases",
)
_MOBILE_TYPE_P = np.array([0.4, 0.35, 0.15, 0.1])
LOGIN_EVENT_TYPE = "userAccount.login"
CALL_EVENT_TYPE = "callCenter.inboundCall"  # not in the XDM enum (eventType is open); documented here

_BROWSER_ENVS = vocab.BROWSERS
_PAGE_URLS = tuple((name, vocab.SITE + path) for name, path in vocab.PAGES)
_PRODUCT_PAGES = tuple(
    (sku, name, f"product: {name}", f"{vocab.SITE}/p/{sku}", price) for sku, name, _, price in vocab.PRODUCTS
)


def _rng(seed: int, cohort: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, cohort, purpose]))


def _digits38(r: np.random.Generator, n: int) -> list[str]:
    """``n`` random 38-digit ECID strings (the first digit is never 0)."""
    d = r.integers(48, 58, (n, 38), dtype=np.uint8)
    d[:, 0] = r.integers(49, 58, n, dtype=np.uint8)
    text = d.tobytes().decode("ascii")
    return [text[i : i + 38] for i in range(0, 38 * n, 38)]


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _uuids(r: np.random.Generator, n: int) -> list[str]:
    """``n`` random UUID-shaped lower-case hex strings (built as one byte matrix: fast)."""
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, _UUID_HEX_POS] = _HEX[r.integers(0, 16, (n, 32), dtype=np.uint8)]
    text = out.tobytes().decode("ascii")
    return [text[i : i + 36] for i in range(0, 36 * n, 36)]


def _iso(ms: np.ndarray) -> list[str]:
    """Epoch milliseconds → ISO-8601 UTC strings with ``Z`` (vectorised)."""
    return [s + "Z" for s in np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").tolist()]


def _phone(p: int) -> str:
    n = 2_000_000_000 + ((p + 7_777) * _PHONE_MULT) % _PHONE_SPACE
    s = f"{n:010d}"
    return f"{s[:3]}-{s[3:6]}-{s[6:]}"


@dataclass
class _Cohort:
    """Everything about one cohort's people that more than one dataset needs."""

    index: int
    start: int
    n: int
    crmid: list[str]
    first: list[str]
    last: list[str]
    gender: list[str]
    birth: list[str]
    city: list[int]
    postal: list[str]
    email: list[str]
    phone: list[str]
    junk_phone: list[bool]
    junk_email: list[bool]
    ecids: list[list[str]]
    app: list[tuple[str, str, int] | None]
    member: list[bool]
    tier: list[int]
    points: list[int]
    crm_updated: list[str]
    mobile_n: list[int]
    offline_n: list[int]
    calls_n: list[int]
    anon_ecids: list[str]
    anon_sessions: list[int]
    sessions: list[int]
    sess: _Sessions | None = None


def _cohort(seed: int, people: int, index: int, ref_ms: int) -> _Cohort:
    start = index * COHORT
    n = min(COHORT, people - start)
    r = _rng(seed, index, _P_PEOPLE)
    pid = np.arange(start, start + n)

    # Households: consecutive people, sizes 1-4, cut at the cohort edge.
    sizes = r.choice(np.array([1, 1, 1, 2, 2, 3, 4]), size=n)
    hh_first = np.empty(n, dtype=np.int64)
    hh_size = np.empty(n, dtype=np.int64)
    i = 0
    for s in sizes.tolist():
        if i >= n:
            break
        s = min(s, n - i)
        hh_first[i : i + s] = i
        hh_size[i : i + s] = s
        i += s
    rank = np.arange(n) - hh_first

    female = r.random(n) < 0.52
    fidx = r.integers(0, 30, n)
    lidx = r.integers(0, len(vocab.LAST_NAMES), n)
    lidx = lidx[hh_first]  # a household shares a surname
    birth_days = r.integers(-14_600, 11_000, n)  # ~1930..2000
    city = r.integers(0, len(vocab.CITIES), n)[hh_first]
    postal_n = r.integers(0, 1000, n)[hh_first]
    dom = r.integers(0, len(vocab.EMAIL_DOMAINS), n)
    crmids = _uuids(r, n)
    n_ecids = r.choice(np.array([0, 1, 1, 1, 2, 2, 3]), size=n)
    ecid_flat = _digits38(r, 3 * n)
    has_app = r.random(n) < 0.45
    dev_idx = r.integers(0, len(vocab.MOBILE_DEVICES), n)
    app_ecid = _digits38(r, n)
    dev_ids = _uuids(r, n)
    # Shared devices are drawn per household (at its first member).
    shared_browser = (r.random(n) < 0.3) & (hh_size >= 2)
    shared_tablet = (r.random(n) < 0.15) & (hh_size >= 2)
    share_k = np.minimum(r.integers(2, 4, n), hh_size)
    member = r.random(n) < 0.6
    tier = r.choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05])
    points = (r.gamma(1.5, 800, n) * (1 + tier)).astype(np.int64)
    junk_phone = r.random(n) < 0.01
    junk_email = r.random(n) < 0.02
    crm_updated_ms = ref_ms - r.integers(30 * _DAY_MS, 400 * _DAY_MS, n)
    mobile_extra = r.poisson(4.0, n)
    offline_n = r.poisson(0.7, n)
    calls_n = r.poisson(0.25, n)
    sess_extra = r.poisson(2.5, n)
    n_anon = int(round(n * 0.25))
    anon_ecids = _digits38(r, n_anon)
    anon_sessions = (1 + r.poisson(0.8, n_anon)).tolist()

    first = [
        (vocab.FIRST_NAMES_FEMALE if f else vocab.FIRST_NAMES_MALE)[k]
        for f, k in zip(female.tolist(), fidx.tolist(), strict=True)
    ]
    last = [vocab.LAST_NAMES[k] for k in lidx.tolist()]
    pids = pid.tolist()
    email = [
        f"{fn}.{ln}{p}@{vocab.EMAIL_DOMAINS[d]}".lower()
        for fn, ln, p, d in zip(first, last, pids, dom.tolist(), strict=True)
    ]
    jp = junk_phone.tolist()
    phone = [vocab.JUNK_PHONE if j else _phone(p) for j, p in zip(jp, pids, strict=True)]
    birth = np.datetime_as_string(birth_days.astype("datetime64[D]"), unit="D").tolist()
    postal = [
        f"{vocab.CITIES[c][3]}{pn:03d}"[:6] for c, pn in zip(city.tolist(), postal_n.tolist(), strict=True)
    ]

    ecids: list[list[str]] = []
    all_ecid = [ecid_flat[3 * k : 3 * k + 3] for k in range(n)]
    ne = n_ecids.tolist()
    for k in range(n):
        ecids.append(all_ecid[k][: ne[k]])
    app: list[tuple[str, str, int] | None] = []
    di = dev_idx.tolist()
    ha = has_app.tolist()
    for k in range(n):
        if ha[k]:
            ns = vocab.MOBILE_DEVICES[di[k]][4]
            app.append((app_ecid[k], dev_ids[k].upper() if ns == "IDFA" else dev_ids[k], di[k]))
        else:
            app.append(None)
    hf = hh_first.tolist()
    rk = rank.tolist()
    sk = share_k.tolist()
    sb = shared_browser.tolist()
    st = shared_tablet.tolist()
    for k in range(n):
        h = hf[k]
        if rk[k] == 0 or rk[k] >= sk[h]:
            continue  # not a sharer: the first member owns the device, ranks below share_k use it
        if sb[h]:  # the household computer: the first member's first ECID
            if not ecids[h]:
                ecids[h] = [all_ecid[h][0]]
            shared = ecids[h][0]
            if shared not in ecids[k]:
                ecids[k] = [shared, *ecids[k][:2]]
        if st[h]:  # the household tablet: same app install, same advertising id
            owner = app[h]
            if owner is None or owner[2] != 2:
                app[h] = (app_ecid[h], dev_ids[h].upper(), 2)
            app[k] = app[h]

    ne = [len(e) for e in ecids]
    sessions = [0 if e == 0 else max(e, e + x) for e, x in zip(ne, sess_extra.tolist(), strict=True)]
    mobile_n = [0 if a is None else 1 + x for a, x in zip(app, mobile_extra.tolist(), strict=True)]
    je = junk_email.tolist()
    off = [max(o, 1) if j else o for o, j in zip(offline_n.tolist(), je, strict=True)]
    return _Cohort(
        index=index,
        start=start,
        n=n,
        crmid=crmids,
        first=first,
        last=last,
        gender=["female" if f else "male" for f in female.tolist()],
        birth=birth,
        city=city.tolist(),
        postal=postal,
        email=email,
        phone=phone,
        junk_phone=jp,
        junk_email=je,
        ecids=ecids,
        app=app,
        member=member.tolist(),
        tier=tier.tolist(),
        points=points.tolist(),
        crm_updated=_iso(crm_updated_ms),
        mobile_n=mobile_n,
        offline_n=off,
        calls_n=calls_n.tolist(),
        anon_ecids=anon_ecids,
        anon_sessions=anon_sessions,
        sessions=sessions,
    )


@dataclass
class _Sessions:
    """Web sessions of one cohort: known people first, then anonymous visitors."""

    person: list[int]  # cohort-local person index, or -1 for an anonymous visitor
    ecid: list[str]
    start_ms: np.ndarray
    events: np.ndarray
    login: list[bool]


def _sessions(seed: int, c: _Cohort, ref_ms: int) -> _Sessions:
    r = _rng(seed, c.index, _P_SESSIONS)
    person: list[int] = []
    ecid: list[str] = []
    login: list[bool] = []
    for k in range(c.n):
        e = c.ecids[k]
        for s in range(c.sessions[k]):
            person.append(k)
            ecid.append(e[s % len(e)])
            login.append(s < len(e))
    extra_login = r.random(len(person)) < 0.25
    login = [a or b for a, b in zip(login, extra_login.tolist(), strict=True)]
    for j, a in enumerate(c.anon_ecids):
        for _ in range(c.anon_sessions[j]):
            person.append(-1)
            ecid.append(a)
            login.append(False)
    s_n = len(person)
    start = ref_ms - r.integers(2 * 3_600_000, WINDOW_DAYS * _DAY_MS, s_n)
    events = 1 + r.poisson(3.0, s_n)
    return _Sessions(person, ecid, start, events, login)


def _without_gc(build: Callable[[_Cohort], list[Record]], c: _Cohort) -> list[Record]:
    """Build one cohort's records with the cyclic GC paused.

    The records hold no reference cycles, but allocating ~10^5 containers triggers repeated
    full collections that cost more than building them (measured: 2.6x slower).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        return build(c)
    finally:
        if was:
            gc.enable()


def _identity(ns_id: str, primary: bool, state: str) -> list[dict[str, Any]]:
    return [{"id": ns_id, "primary": primary, "authenticatedState": state}]


class DemoDataset:
    """One generated dataset: its name, XDM class and a fresh record iterator per call.

    Attributes:
        name: dataset name, e.g. ``"web_events"``.
        xdm_class: ``"profile"`` or ``"experienceevent"``.
        title: one line saying what the dataset is.
    """

    def __init__(
        self,
        name: str,
        xdm_class: str,
        title: str,
        records: Callable[[], Iterator[Record]],
        count: Callable[[], int],
        chunks: Callable[[], Iterator[list[Record]]],
    ) -> None:
        self.name = name
        self.xdm_class = xdm_class
        self.title = title
        self._records = records
        self._count = count
        self._chunks = chunks
        self._cached_count: int | None = None
        self._chunk: Callable[[int], list[Record]] = lambda i: []

    def records(self) -> Iterator[Record]:
        """A new iterator over the dataset's records (generated lazily, cohort by cohort)."""
        return self._records()

    def chunks(self) -> Iterator[list[Record]]:
        """The same records as :meth:`records`, one list per cohort (for bulk writers)."""
        return self._chunks()

    def __iter__(self) -> Iterator[Record]:
        return self._records()

    def count(self) -> int:
        """Exact number of records, computed from the plan without building them."""
        if self._cached_count is None:
            self._cached_count = self._count()
        return self._cached_count

    def __repr__(self) -> str:
        return f"DemoDataset({self.name!r}, {self.xdm_class!r})"


@dataclass(frozen=True)
class GroundTruth:
    """Who really owns each generated identity.

    Attributes:
        owners: identity → sorted tuple of person numbers (0-based) who use it; ``()`` for the
            ECIDs of anonymous visitors. Shared devices have 2-3 owners, junk ids many.
        junk: the junk identities (``test@test.com``, ``000-000-0000``) that occur in the data.
        shared: identities of shared household devices (ECID / IDFA used by 2-3 people).
        anonymous: ECIDs of visitors who never log in.
    """

    owners: dict[Identity, tuple[int, ...]]
    junk: frozenset[Identity]
    shared: frozenset[Identity]
    anonymous: frozenset[Identity]
    _by_person: dict[int, frozenset[Identity]] = field(repr=False)

    def identities_of(self, person: int) -> frozenset[Identity]:
        """Every identity person ``person`` uses (shared and junk ones included)."""
        return self._by_person.get(person, frozenset())

    def crmid(self, person: int) -> Identity:
        """The person's CRM id (one per person, never shared)."""
        return next(i for i in self._by_person[person] if i.namespace == "CRMID")

    def persons(self, identity: Identity) -> tuple[int, ...]:
        """Owners of ``identity`` (``()`` for anonymous or unknown identities)."""
        return self.owners.get(identity, ())


class DemoData:
    """A generated demo population: datasets, counts and ground truth.

    Build it with :func:`generate`. Nothing is generated until records are iterated.
    """

    def __init__(self, people: int, seed: int, reference_time: datetime) -> None:
        if people < 0:
            raise ValueError("people must be >= 0")
        self.people = people
        self.seed = seed
        self.reference_time = reference_time.astimezone(UTC)
        self._ref_ms = int(self.reference_time.timestamp() * 1000)
        self._cohorts = (people + COHORT - 1) // COHORT
        specs: list[tuple[str, str, str, Callable[[_Cohort], list[Record]], Callable[[_Cohort], int]]] = [
            ("crm_profiles", "profile", "CRM customer records: CRMID, Email, Phone, name, address, loyalty",
             self._crm, lambda c: c.n),
            ("loyalty_members", "profile", "Loyalty programme records keyed by CRMID; tiers sometimes disagree with CRM",
             self._loyalty, lambda c: sum(c.member)),
            ("web_events", "experienceevent", "Web page views, product views, cart adds and purchases (ECID)",
             self._web, lambda c: int(self._sess(c).events.sum())),
            ("login_events", "experienceevent", "Web logins linking an ECID to a CRMID",
             self._logins, lambda c: sum(self._sess(c).login)),
            ("mobile_events", "experienceevent", "Mobile app events (app ECID + IDFA/GAID, CRMID when logged in)",
             self._mobile, lambda c: sum(c.mobile_n)),
            ("offline_purchases", "experienceevent", "Store purchases identified by CRMID or Email",
             self._offline, lambda c: sum(c.offline_n)),
            ("call_center", "experienceevent", "Call-centre contacts identified by Phone",
             self._calls, lambda c: sum(c.calls_n)),
        ]  # fmt: skip
        self.datasets: tuple[DemoDataset, ...] = tuple(self._make(*s) for s in specs)
        self._cache: dict[int, _Cohort] = {}

    def _make(
        self,
        name: str,
        xdm_class: str,
        title: str,
        build: Callable[[_Cohort], list[Record]],
        count: Callable[[_Cohort], int],
    ) -> DemoDataset:
        def chunk(i: int) -> list[Record]:
            return _without_gc(build, self._cohort(i))

        def chunks() -> Iterator[list[Record]]:
            for i in range(self._cohorts):
                yield chunk(i)

        def records() -> Iterator[Record]:
            for chunk in chunks():
                yield from chunk

        def total() -> int:
            return sum(count(self._cohort(i)) for i in range(self._cohorts))

        ds = DemoDataset(name, xdm_class, title, records, total, chunks)
        ds._chunk = chunk
        return ds

    def batches(self, names: Iterable[str] | None = None) -> Iterator[tuple[DemoDataset, list[Record]]]:
        """Every dataset's records, cohort by cohort: ``(dataset, records of one cohort)``.

        The cheapest way to consume everything at large sizes (each cohort is planned once and
        memory stays at one cohort), e.g. to ingest a million-person demo.
        """
        wanted = None if names is None else set(names)
        chosen = [d for d in self.datasets if wanted is None or d.name in wanted]
        for i in range(self._cohorts):
            for d in chosen:
                yield d, d._chunk(i)

    def _cohort(self, index: int) -> _Cohort:
        # Datasets are walked one after another, each cohort by cohort: keep recent cohorts
        # (about 1 MB each) so the second and later datasets reuse them.
        c = self._cache.get(index)
        if c is None:
            c = _cohort(self.seed, self.people, index, self._ref_ms)
            if len(self._cache) >= _COHORT_CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = c
        return c

    def _sess(self, c: _Cohort) -> _Sessions:
        if c.sess is None:
            c.sess = _sessions(self.seed, c, self._ref_ms)
        return c.sess

    def dataset(self, name: str) -> DemoDataset:
        """The dataset called ``name`` (``KeyError`` if there is none)."""
        for d in self.datasets:
            if d.name == name:
                return d
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        """Records per dataset, exact, without generating the records."""
        return {d.name: d.count() for d in self.datasets}

    def summary(self) -> dict[str, Any]:
        """Counts per dataset plus identity facts from the ground truth."""
        gt = self.ground_truth()
        return {
            "people": self.people,
            "seed": self.seed,
            "reference_time": format_time(self.reference_time),
            "datasets": self.counts(),
            "identities": len(gt.owners),
            "shared_device_ids": len(gt.shared),
            "junk_ids": sorted(str(i) for i in gt.junk),
            "anonymous_ecids": len(gt.anonymous),
        }

    def ground_truth(self) -> GroundTruth:
        """Which identity belongs to which person (exact; built from the plan, not the records)."""
        owners: dict[Identity, set[int]] = {}
        anonymous: set[Identity] = set()
        junk: set[Identity] = set()
        by_person: dict[int, set[Identity]] = {}

        def add(i: Identity, p: int) -> None:
            owners.setdefault(i, set()).add(p)
            by_person.setdefault(p, set()).add(i)

        for ci in range(self._cohorts):
            c = self._cohort(ci)
            for k in range(c.n):
                p = c.start + k
                add(Identity("CRMID", c.crmid[k]), p)
                add(Identity("Email", c.email[k]), p)
                add(Identity("Phone", c.phone[k]), p)
                if c.junk_phone[k]:
                    junk.add(Identity("Phone", c.phone[k]))
                if c.junk_email[k]:
                    add(Identity("Email", vocab.JUNK_EMAIL), p)
                    junk.add(Identity("Email", vocab.JUNK_EMAIL))
                for e in c.ecids[k]:
                    add(Identity("ECID", e), p)
                a = c.app[k]
                if a is not None:
                    add(Identity("ECID", a[0]), p)
                    add(Identity(vocab.MOBILE_DEVICES[a[2]][4], a[1]), p)
            for e in c.anon_ecids:
                i = Identity("ECID", e)
                anonymous.add(i)
                owners.setdefault(i, set())
        shared = {i for i, ps in owners.items() if len(ps) >= 2 and i not in junk}
        return GroundTruth(
            owners={i: tuple(sorted(ps)) for i, ps in owners.items()},
            junk=frozenset(junk),
            shared=frozenset(shared),
            anonymous=frozenset(anonymous),
            _by_person={p: frozenset(ids) for p, ids in by_person.items()},
        )

    # ----- dataset builders (one cohort → list of records) -----

    def _id(self, kind: str, cohort: int, j: int) -> str:
        return f"{kind}-{self.seed:x}-{cohort:x}-{j:x}"

    def _crm(self, c: _Cohort) -> list[Record]:
        out: list[Record] = []
        for k in range(c.n):
            city, country, code, _ = vocab.CITIES[c.city[k]]
            rec: Record = {
                "_id": self._id("crm", c.index, k),
                "identityMap": {
                    "CRMID": _identity(c.crmid[k], True, "authenticated"),
                    "Email": _identity(c.email[k], False, "authenticated"),
                    "Phone": _identity(c.phone[k], False, "authenticated"),
                },
                "person": {
                    "name": {"firstName": c.first[k], "lastName": c.last[k]},
                    "birthDate": c.birth[k],
                    "gender": c.gender[k],
                },
                "homeAddress": {
                    "city": city,
                    "country": country,
                    "countryCode": code,
                    "postalCode": c.postal[k],
                },
                "personalEmail": {"address": c.email[k]},
                "mobilePhone": {"number": c.phone[k]},
                "extSourceSystemAudit": {"lastUpdatedDate": c.crm_updated[k]},
            }
            if c.member[k]:
                rec[TENANT] = {"loyalty": {"tier": vocab.LOYALTY_TIERS[c.tier[k]], "points": c.points[k]}}
            out.append(rec)
        return out

    def _loyalty(self, c: _Cohort) -> list[Record]:
        r = _rng(self.seed, c.index, _P_LOYALTY)
        conflict = (r.random(c.n) < 0.25).tolist()
        bump = r.integers(1, 4, c.n).tolist()
        drift = r.integers(-500, 1500, c.n).tolist()
        upd = _iso(self._ref_ms - r.integers(0, 200 * _DAY_MS, c.n))
        since = _iso(self._ref_ms - r.integers(200 * _DAY_MS, 3000 * _DAY_MS, c.n))
        out: list[Record] = []
        for k in range(c.n):
            if not c.member[k]:
                continue
            tier = c.tier[k]
            points = c.points[k]
            if conflict[k]:  # the loyalty system has a newer (or just different) view
                tier = (tier + bump[k]) % 4
                points = max(0, points + drift[k])
            out.append(
                {
                    "_id": self._id("loy", c.index, k),
                    "identityMap": {"CRMID": _identity(c.crmid[k], True, "authenticated")},
                    TENANT: {
                        "loyalty": {
                            "tier": vocab.LOYALTY_TIERS[tier],
                            "points": points,
                            "memberSince": since[k][:10],
                        }
                    },
                    "extSourceSystemAudit": {"lastUpdatedDate": upd[k]},
                }
            )
        return out

    def _web(self, c: _Cohort) -> list[Record]:
        s = self._sess(c)
        r = _rng(self.seed, c.index, _P_WEB)
        ev = s.events
        total = int(ev.sum())
        sess_of = np.repeat(np.arange(len(ev)), ev)
        gaps = r.integers(15_000, 180_000, total)
        csum = np.cumsum(gaps)
        first_pos = np.cumsum(ev) - ev
        offset = csum - csum[first_pos][sess_of]  # 0 for a session's first event
        ts = _iso(s.start_ms[sess_of] + offset)
        etype = r.choice(4, total, p=_WEB_TYPE_P)
        etype[first_pos] = 0  # sessions open with a page view
        etl = etype.tolist()
        prod = r.integers(0, len(vocab.PRODUCTS), total).tolist()
        qty = r.integers(1, 4, total).tolist()
        page = r.integers(0, len(vocab.PAGES), total).tolist()
        extra = r.integers(0, len(vocab.PRODUCTS), total).tolist()
        sess = sess_of.tolist()
        # Per session: the ECID and its browser (a browser stays with its ECID: derived from the
        # ECID's last digits).
        nb = len(_BROWSER_ENVS)
        sess_env = [(e, *_BROWSER_ENVS[int(e[-2:]) % nb]) for e in s.ecid]
        pre = f"web-{self.seed:x}-{c.index:x}-"
        ids = [f"{pre}{j:x}" for j in range(total)]
        out: list[Record] = []
        append = out.append
        for j, si, t, when, _id in zip(range(total), sess, etl, ts, ids):  # noqa: B905 - equal lengths
            ecid, ua, lang, vw, vh = sess_env[si]
            if t == 0:
                pname, url = _PAGE_URLS[page[j]]
                append(
                    {
                        "_id": _id,
                        "timestamp": when,
                        "eventType": "web.webpagedetails.pageViews",
                        "identityMap": {
                            "ECID": [{"id": ecid, "primary": True, "authenticatedState": "ambiguous"}]
                        },
                        "environment": {
                            "type": "browser",
                            "browserDetails": {
                                "userAgent": ua,
                                "acceptLanguage": lang,
                                "viewportWidth": vw,
                                "viewportHeight": vh,
                            },
                        },
                        "web": {"webPageDetails": {"name": pname, "URL": url}},
                    }
                )
                continue
            pj = prod[j]
            sku, name, pname, url, price = _PRODUCT_PAGES[pj]
            if t == 1:
                items = [{"SKU": sku, "name": name, "quantity": 1, "priceTotal": price}]
                commerce: Record = {"productViews": {"value": 1.0}}
            elif t == 2:
                q = qty[j]
                items = [{"SKU": sku, "name": name, "quantity": q, "priceTotal": price * q}]
                commerce = {"productListAdds": {"value": 1.0}}
            else:
                q = qty[j]
                total_price = price * q
                items = [{"SKU": sku, "name": name, "quantity": q, "priceTotal": total_price}]
                if extra[j] != pj:
                    sku2, name2, _, _, price2 = _PRODUCT_PAGES[extra[j]]
                    items.append({"SKU": sku2, "name": name2, "quantity": 1, "priceTotal": price2})
                    total_price += price2
                commerce = {
                    "purchases": {"value": 1.0},
                    "order": {
                        "purchaseID": f"W{pre[3:]}{j:x}",
                        "currencyCode": "USD",
                        "priceTotal": round(total_price, 2),
                    },
                }
            append(
                {
                    "_id": _id,
                    "timestamp": when,
                    "eventType": _WEB_TYPES[t],
                    "identityMap": {
                        "ECID": [{"id": ecid, "primary": True, "authenticatedState": "ambiguous"}]
                    },
                    "environment": {
                        "type": "browser",
                        "browserDetails": {
                            "userAgent": ua,
                            "acceptLanguage": lang,
                            "viewportWidth": vw,
                            "viewportHeight": vh,
                        },
                    },
                    "web": {"webPageDetails": {"name": pname, "URL": url}},
                    "productListItems": items,
                    "commerce": commerce,
                }
            )
        return out

    def _logins(self, c: _Cohort) -> list[Record]:
        s = self._sess(c)
        ts = _iso(s.start_ms + 5_000)
        out: list[Record] = []
        for j, ok in enumerate(s.login):
            if not ok:
                continue
            k = s.person[j]
            out.append(
                {
                    "_id": self._id("login", c.index, j),
                    "timestamp": ts[j],
                    "eventType": LOGIN_EVENT_TYPE,
                    "identityMap": {
                        "ECID": _identity(s.ecid[j], False, "ambiguous"),
                        "CRMID": _identity(c.crmid[k], True, "authenticated"),
                    },
                    "web": {"webPageDetails": {"name": "login", "URL": vocab.SITE + "/login"}},
                }
            )
        return out

    def _mobile(self, c: _Cohort) -> list[Record]:
        r = _rng(self.seed, c.index, _P_MOBILE)
        total = sum(c.mobile_n)
        ts = _iso(self._ref_ms - r.integers(60_000, WINDOW_DAYS * _DAY_MS, total))
        etype = r.choice(4, total, p=_MOBILE_TYPE_P).tolist()
        logged = (r.random(total) < 0.3).tolist()
        prod = r.integers(0, len(vocab.PRODUCTS), total).tolist()
        out: list[Record] = []
        j = 0
        for k in range(c.n):
            a = c.app[k]
            if a is None:
                continue
            app_ecid, dev_id, di = a
            os_name, os_ver, maker, model, ns = vocab.MOBILE_DEVICES[di]
            for m in range(c.mobile_n[k]):
                t = 0 if m == 0 else etype[j]
                idm: dict[str, Any] = {
                    "ECID": _identity(app_ecid, True, "ambiguous"),
                    ns: _identity(dev_id, False, "ambiguous"),
                }
                if m == 0 or logged[j]:
                    idm["CRMID"] = _identity(c.crmid[k], False, "authenticated")
                rec: Record = {
                    "_id": self._id("app", c.index, j),
                    "timestamp": ts[j],
                    "eventType": _MOBILE_TYPES[t],
                    "identityMap": idm,
                    "environment": {
                        "type": "application",
                        "operatingSystem": os_name,
                        "operatingSystemVersion": os_ver,
                    },
                    "device": {"manufacturer": maker, "model": model, "type": "mobile"},
                    "application": {"name": "Tessera Outfitters", "version": "4.2.0"},
                }
                if t > 0:
                    sku, name, _, price = vocab.PRODUCTS[prod[j]]
                    rec["productListItems"] = [{"SKU": sku, "name": name, "quantity": 1, "priceTotal": price}]
                    if t == 1:
                        rec["commerce"] = {"productViews": {"value": 1.0}}
                    elif t == 2:
                        rec["commerce"] = {"productListAdds": {"value": 1.0}}
                    else:
                        rec["commerce"] = {
                            "purchases": {"value": 1.0},
                            "order": {
                                "purchaseID": f"A-{c.index:x}-{j:x}",
                                "currencyCode": "USD",
                                "priceTotal": price,
                            },
                        }
                out.append(rec)
                j += 1
        return out

    def _offline(self, c: _Cohort) -> list[Record]:
        r = _rng(self.seed, c.index, _P_OFFLINE)
        total = sum(c.offline_n)
        ts = _iso(self._ref_ms - r.integers(3_600_000, WINDOW_DAYS * _DAY_MS, total))
        by_crm = (r.random(total) < 0.6).tolist()
        store = r.integers(0, len(vocab.STORES), total).tolist()
        prod = r.integers(0, len(vocab.PRODUCTS), (total, 3)).tolist()
        n_items = r.integers(1, 4, total).tolist()
        out: list[Record] = []
        j = 0
        for k in range(c.n):
            for m in range(c.offline_n[k]):
                if c.junk_email[k] and m == 0:  # the cashier typed a placeholder e-mail
                    idm = {
                        "CRMID": _identity(c.crmid[k], True, "authenticated"),
                        "Email": _identity(vocab.JUNK_EMAIL, False, "authenticated"),
                    }
                elif by_crm[j]:
                    idm = {"CRMID": _identity(c.crmid[k], True, "authenticated")}
                else:
                    idm = {"Email": _identity(c.email[k], True, "authenticated")}
                items = []
                for p in prod[j][: n_items[j]]:
                    sku, name, _, price = vocab.PRODUCTS[p]
                    items.append({"SKU": sku, "name": name, "quantity": 1, "priceTotal": price})
                sid, sname = vocab.STORES[store[j]]
                out.append(
                    {
                        "_id": self._id("pos", c.index, j),
                        "timestamp": ts[j],
                        "eventType": "commerce.purchases",
                        "identityMap": idm,
                        "productListItems": items,
                        "commerce": {
                            "purchases": {"value": 1.0},
                            "order": {
                                "purchaseID": f"S-{c.index:x}-{j:x}",
                                "currencyCode": "USD",
                                "priceTotal": round(sum(i["priceTotal"] for i in items), 2),
                            },
                        },
                        TENANT: {"store": {"storeId": sid, "name": sname}},
                    }
                )
                j += 1
        return out

    def _calls(self, c: _Cohort) -> list[Record]:
        r = _rng(self.seed, c.index, _P_CALLS)
        total = sum(c.calls_n)
        ts = _iso(self._ref_ms - r.integers(3_600_000, WINDOW_DAYS * _DAY_MS, total))
        with_crm = (r.random(total) < 0.5).tolist()
        reason = r.integers(0, len(vocab.CALL_REASONS), total).tolist()
        dur = r.integers(40, 1500, total).tolist()
        agent = r.integers(1, 60, total).tolist()
        out: list[Record] = []
        j = 0
        for k in range(c.n):
            for _ in range(c.calls_n[k]):
                idm = {"Phone": _identity(c.phone[k], True, "authenticated")}
                if with_crm[j]:
                    idm["CRMID"] = _identity(c.crmid[k], False, "authenticated")
                out.append(
                    {
                        "_id": self._id("call", c.index, j),
                        "timestamp": ts[j],
                        "eventType": CALL_EVENT_TYPE,
                        "identityMap": idm,
                        TENANT: {
                            "callCenter": {
                                "reason": vocab.CALL_REASONS[reason[j]],
                                "durationSeconds": dur[j],
                                "agentId": f"AG-{agent[j]:03d}",
                            }
                        },
                    }
                )
                j += 1
        return out


def generate(people: int, *, seed: int = 0, reference_time: datetime = REFERENCE_TIME) -> DemoData:
    """Plan a demo population of ``people`` customers (records are generated lazily).

    Args:
        people: number of known customers (anonymous visitors come on top, about 25 %).
        seed: random seed; the same seed and reference time give identical records.
        reference_time: the demo's "now"; events fall in the 90 days before it.

    Returns:
        A :class:`DemoData` with ``datasets`` (name, XDM class, records), ``counts()``,
        ``ground_truth()`` and ``summary()``.

    >>> demo = generate(10, seed=1)
    >>> [d.name for d in demo.datasets][:3]
    ['crm_profiles', 'loyalty_members', 'web_events']
    >>> demo.counts()["crm_profiles"]
    10
    """
    return DemoData(people, seed, reference_time)


def window(reference_time: datetime = REFERENCE_TIME) -> tuple[datetime, datetime]:
    """The time range events fall in: ``(reference_time - 90 days, reference_time)``."""
    return reference_time - timedelta(days=WINDOW_DAYS), reference_time
