"""Benchmark: per-record XDM validation cost, next to plain ``orjson.loads`` of the same records.

Usage: ``python benchmarks/xdm_validate.py --records 100000`` (run from the repository root).

Prints, for profile records and for events: records/s for (a) ``orjson.loads`` alone (the
reference), (b) ``orjson.loads`` + Tessera's compiled validator, (c) validation alone, and the
ratio (b)/(a). With ``--jsonschema`` also the same validation done by ``jsonschema`` with a
format checker, for comparison.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tessera.xdm import EXPERIENCE_EVENT, PROFILE, SchemaRegistry  # noqa: E402
from tessera.xdm import standard as st  # noqa: E402


def _profile(rng: random.Random, i: int) -> dict[str, Any]:
    first = rng.choice(["Ann", "Bo", "Chen", "Dara", "Eli", "Femi"])
    email = f"{first.lower()}.{i}@example.com"
    return {
        "_id": f"p-{i}",
        "identityMap": {
            "Email": [{"id": email, "primary": True, "authenticatedState": "authenticated"}],
            "CRMID": [{"id": f"crm-{i}"}],
        },
        "person": {
            "name": {"firstName": first, "lastName": "Lee", "fullName": f"{first} Lee"},
            "birthDate": f"19{rng.randint(40, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "gender": rng.choice(["male", "female", "not_specified"]),
        },
        "personalEmail": {"address": email},
        "mobilePhone": {"number": f"+41 79 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"},
        "homeAddress": {"city": "Basel", "postalCode": "4051", "countryCode": "CH"},
        "loyalty": {"tier": rng.choice(["bronze", "silver", "gold"]), "points": rng.randint(0, 5000)},
        "extSourceSystemAudit": {"lastUpdatedDate": "2024-03-01T10:00:00Z"},
    }


def _event(rng: random.Random, i: int) -> dict[str, Any]:
    items = [
        {
            "SKU": f"SKU-{rng.randint(1, 500)}",
            "name": "Shirt",
            "quantity": rng.randint(1, 3),
            "priceTotal": 19.99,
        }
        for _ in range(rng.randint(1, 3))
    ]
    return {
        "_id": f"e-{i}",
        "timestamp": f"2024-03-{rng.randint(10, 28)}T1{rng.randint(0, 9)}:00:00.000Z",
        "eventType": "commerce.productViews",
        "identityMap": {"ECID": [{"id": str(rng.randint(10**37, 10**38 - 1)), "primary": True}]},
        "web": {
            "webPageDetails": {
                "name": "product",
                "URL": "https://shop.example.com/p",
                "pageViews": {"value": 1},
            }
        },
        "commerce": {"productViews": {"value": 1}},
        "productListItems": items,
        "environment": {"browserDetails": {"name": "Firefox"}, "ipV4": "10.0.0.1", "type": "browser"},
    }


def _rates(n: int, fns: list[Callable[[], None]], rounds: int = 5) -> list[float]:
    """Records/s of each function: best of ``rounds``, run interleaved so that load from other
    processes on the machine hits the reference and the measured code alike."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return [n / b for b in best]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000, help="records per kind (default 100000)")
    ap.add_argument("--jsonschema", action="store_true", help="also time jsonschema (slow)")
    args = ap.parse_args()
    n = args.records
    rng = random.Random(42)
    reg = SchemaRegistry("acme")
    p = reg.create_schema(
        "Profiles",
        PROFILE,
        [st.IDENTITY_MAP, st.PERSON_DETAILS, st.PERSONAL_DETAILS, st.LOYALTY, st.SOURCE_AUDIT],
    )
    e = reg.create_schema("Events", EXPERIENCE_EVENT, [st.COMMERCE, st.WEB, st.ENVIRONMENT])
    print(
        f"# xdm_validate: {n:,} records per kind; Python {platform.python_version()} on {platform.machine()}"
    )
    print(
        "| kind | avg bytes | orjson.loads rec/s (ref) | loads+validate rec/s | validate only rec/s | ratio (ref time / total) |"
    )
    print("|---|---|---|---|---|---|")
    for kind, make, schema in (("profile", _profile, p), ("event", _event, e)):
        lines = [orjson.dumps(make(rng, i)) for i in range(n)]
        docs = [orjson.loads(line) for line in lines]
        validator = reg.validator(schema.id)
        bad = sum(1 for d in docs if validator.validate(d))
        assert bad == 0, f"{bad} generated {kind} records did not validate"

        def loads_only(lines: list[bytes] = lines) -> None:
            for line in lines:
                orjson.loads(line)

        def loads_validate(lines: list[bytes] = lines, v: Any = validator) -> None:
            check = v.validate
            for line in lines:
                check(orjson.loads(line))

        def validate_only(docs: list[Any] = docs, v: Any = validator) -> None:
            check = v.validate
            for d in docs:
                check(d)

        ref, total, only = _rates(n, [loads_only, loads_validate, validate_only])
        size = sum(map(len, lines)) // n
        print(f"| {kind} | {size} | {ref:,.0f} | {total:,.0f} | {only:,.0f} | {ref / total:.2f}x slower |")
        if args.jsonschema:
            import jsonschema

            js = jsonschema.Draft6Validator(
                reg.resolve(schema.id), format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER
            )
            m = max(1, n // 10)

            def js_only(docs: list[Any] = docs[:m], js: Any = js) -> None:
                for d in docs:
                    list(js.iter_errors(d))

            print(f"|   jsonschema (same schema, formats on) | | | | {_rates(m, [js_only], 1)[0]:,.0f} | |")


if __name__ == "__main__":
    main()
