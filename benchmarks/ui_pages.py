"""Server time of every call each UI page makes, on a loaded demo, next to ``/tessera/health``.

The app runs in-process behind ``httpx.ASGITransport`` (no sockets), so a figure is the time the
server spends on the request: routing, the gateway, the service calls and JSON encoding. The
reference measured in the same run is ``GET /tessera/health`` (the cheapest route); the ratio
column says how many health checks one call costs. A page's time is the sum of the calls it makes
to render (calls made on user input, such as explain or upload, are listed separately).

    python benchmarks/ui_pages.py --people 2000 [--repeat 7] [--out benchmarks/results/ui.md]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tessera.api import create_app  # noqa: E402
from tessera.demo.load import load_demo  # noqa: E402
from tessera.platform import Platform  # noqa: E402

Call = tuple[str, str, str, Any]
"""(label, method, path, JSON body or None)."""


def _mem_gib() -> int:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)


def _distro() -> str:
    try:
        return "Debian " + Path("/etc/debian_version").read_text().strip()
    except OSError:
        return f"{platform.system()} {platform.release()}"


def plan(platform_: Platform) -> dict[str, list[Call]]:
    """The calls of each page, with real identities and ids from the loaded sandbox."""
    sandbox = platform_.sandbox()
    pid, doc = next(
        (p, d)
        for p, d in sandbox.profiles.scan_profiles()
        if len(d.get("identities", [])) >= 3 and d.get("sources")
    )
    ids = doc["identities"]
    email = next((i["id"] for i in ids if i["namespace"]["code"] == "Email"), ids[0]["id"])
    a, b = (f"{i['namespace']['code']}:{i['id']}" for i in ids[:2])
    batch = next(bt["id"] for bt in sandbox.batches.list())
    pql = 'homeAddress.country = "Australia"'
    ui = "/tessera/ui-api"
    return {
        "index (HTML)": [("GET /", "GET", "/", None)],
        "dashboard": [("overview", "GET", f"{ui}/overview", None)],
        "profile": [
            ("namespaces", "GET", f"{ui}/namespaces", None),
            ("profile", "GET", f"{ui}/profile?namespace=Email&id={email}", None),
            ("events", "GET", f"{ui}/profile/events?profileId={pid}", None),
        ],
        "profile: on input": [
            ("suggest", "GET", f"{ui}/identities/suggest?namespace=Email&prefix={email[:2]}", None),
            ("explain link", "GET", f"{ui}/identity/explain?a={a}&b={b}", None),
        ],
        "segment builder": [
            ("schema fields", "GET", f"{ui}/schema/fields", None),
            ("segments", "GET", f"{ui}/segments", None),
        ],
        "segment builder: on change": [
            ("pql check", "POST", f"{ui}/pql/check", {"pql": pql}),
            ("estimate", "POST", f"{ui}/estimate", {"pql": pql}),
        ],
        "segments": [("segments", "GET", f"{ui}/segments", None)],
        "identity": [("namespaces", "GET", f"{ui}/namespaces", None)],
        "identity: on input": [
            (
                "simulate",
                "POST",
                f"{ui}/identity/simulate",
                {"text": "CRMID: a, ECID: 1\nCRMID: b, ECID: 1", "unique": ["CRMID"]},
            )
        ],
        "datasets": [("datasets", "GET", f"{ui}/datasets", None)],
        "datasets: on input": [("batch errors", "GET", f"{ui}/batches/{batch}/errors", None)],
        "destinations": [("activation", "GET", f"{ui}/activation", None)],
    }


async def _time(client: httpx.AsyncClient, call: Call, repeat: int) -> tuple[float, int]:
    _, method, path, body = call
    times = []
    status = 0
    for _ in range(repeat):
        t = time.perf_counter()
        res = await client.request(method, path, json=body)
        times.append(time.perf_counter() - t)
        status = res.status_code
    return statistics.median(times) * 1000, status


async def measure(
    platform_: Platform, repeat: int
) -> tuple[float, float, list[tuple[str, str, float, float, int]]]:
    """(health ms, start-up s, rows): the app is started as uvicorn starts it (its lifespan, which
    warms the UI's caches before connections are accepted), then every page is visited."""
    app = create_app(platform_)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    # a failing call is reported with its status, not its traceback
    logging.getLogger("tessera.api").setLevel(logging.CRITICAL)
    rows: list[tuple[str, str, float, float, int]] = []
    t = time.perf_counter()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client,
    ):
        startup = time.perf_counter() - t
        await client.get("/tessera/health")
        health, _ = await _time(client, ("health", "GET", "/tessera/health", None), repeat * 5)
        for page, calls in plan(platform_).items():
            for call in calls:
                t = time.perf_counter()
                await client.request(call[1], call[2], json=call[3])  # first call fills the UI caches
                first = (time.perf_counter() - t) * 1000
                ms, status = await _time(client, call, repeat)
                rows.append((page, call[0], first, ms, status))
    return health, startup, rows


def report(
    people: int,
    load_s: float,
    profiles: int,
    health: float,
    startup: float,
    rows: list[tuple[str, str, float, float, int]],
) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# UI pages: server time per call",
        "",
        f"Run {now}; machine: {os.cpu_count()} cores, {_mem_gib()} GiB, {_distro()}, Python {platform.python_version()}.",
        f"Demo: {people} generated people (no Luma files), {profiles} profiles, loaded in {load_s:.1f} s.",
        "App in-process over httpx.ASGITransport; median of the repeats; reference `GET /tessera/health`"
        f" = {health:.2f} ms in the same run.",
        f"Server start-up (the app's lifespan: UI caches warmed before connections are accepted): {startup:.1f} s.",
        "",
        "| page | call | first call ms | ms | × health | status |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    totals: dict[str, list[float]] = {}
    for page, call, first, ms, status in rows:
        lines.append(f"| {page} | {call} | {first:.1f} | {ms:.1f} | {ms / health:.0f} | {status} |")
        if ": " not in page:
            acc = totals.setdefault(page, [0.0, 0.0])
            acc[0] += first
            acc[1] += ms
    lines += [
        "",
        "First call: the first request after start-up; ms: median of the repeats after it.",
        "",
        "| page (calls made to render) | first visit ms | ms | × health |",
        "| --- | ---: | ---: | ---: |",
    ]
    for page, (first, ms) in totals.items():
        lines.append(f"| {page} | {first:.1f} | {ms:.1f} | {ms / health:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", "--scale", type=int, default=2000, help="generated demo people")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--home",
        type=Path,
        help="measure an already loaded data directory (e.g. one kept from benchmarks/profile.py at "
        "1M profiles) instead of loading a demo; --people is then only a label",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch, Platform.open(args.home or scratch) as platform_:
        t = time.perf_counter()
        if args.home is None:
            load_demo(platform_.sandbox(), people=args.people, real_data=False)
        else:
            platform_.sandbox()  # opening loads the identity graph: counted as the load
        load_s = time.perf_counter() - t
        profiles = platform_.sandbox().profiles.count()
        run: Callable[[], Any] = lambda: measure(platform_, args.repeat)  # noqa: E731
        health, startup, rows = asyncio.run(run())
        text = report(args.people, load_s, profiles, health, startup, rows)
        if args.home is not None:
            text = text.replace(
                f"Demo: {args.people} generated people (no Luma files)",
                f"Data directory {args.home} (kept from a benchmark run; opened, not loaded)",
            )
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
