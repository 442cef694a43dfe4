"""The documented scenarios of spec/aep.md §c through the simulator (the engine with no store)."""

from __future__ import annotations

from tessera.identity import simulate
from tessera.model import Identity


def graphs(result: object) -> set[frozenset[str]]:
    return {frozenset(str(i) for i in g) for g in result.graphs}  # type: ignore[attr-defined]


def test_id_link_1_customer_scenario() -> None:
    text = """
    CRMID: 60013ABC, Phone: 555-555-1234, Email: julien@acme.com
    CRMID: 31260XYZ, Phone: 777-777-6890, Email: evan@acme.com
    ECID: 38652
    ECID: 38652, CRMID: 31260XYZ
    ECID: 44675
    ECID: 44675, CRMID: 31260XYZ
    """
    result = simulate(text)
    assert graphs(result) == {
        frozenset({"CRMID:60013ABC", "Phone:555-555-1234", "Email:julien@acme.com"}),
        frozenset(
            {"CRMID:31260XYZ", "Phone:777-777-6890", "Email:evan@acme.com", "ECID:38652", "ECID:44675"}
        ),
    }
    # a single-identity event stores nothing in the graph
    assert result.graph.profile_id(Identity("ECID", "38652")) == result.graph.profile_id(
        Identity("Email", "evan@acme.com")
    )


def test_ioa_1_shared_device_crmid_unique() -> None:
    result = simulate(
        "CRMID: Jane, ECID: 111\nCRMID: John, ECID: 111", unique=["CRMID"], priority=["CRMID", "ECID"]
    )
    assert graphs(result) == {frozenset({"CRMID:John", "ECID:111"})}
    assert result.graph.profile_id(Identity("CRMID", "Jane")) is None  # Jane has no graph entry


def test_ioa_2_shared_device_crmid_and_email_unique() -> None:
    text = """
    CRMID: Jane, Email: jane@x
    CRMID: John, Email: john@x
    CRMID: Jane, ECID: 111
    CRMID: John, ECID: 111
    """
    result = simulate(text, unique=["CRMID", "Email"], priority=["CRMID", "Email", "ECID"])
    assert graphs(result) == {
        frozenset({"CRMID:Jane", "Email:jane@x"}),
        frozenset({"CRMID:John", "Email:john@x", "ECID:111"}),
    }


def test_ioa_3_bad_email() -> None:
    text = """
    CRMID: Jane, ECID: 1
    CRMID: John, ECID: 2
    CRMID: Jane, Email: test@test.com
    CRMID: John, Email: test@test.com
    """
    result = simulate(text, unique=["CRMID", "Email"], priority=["CRMID", "Email", "ECID"])
    assert graphs(result) == {
        frozenset({"CRMID:Jane", "ECID:1"}),
        frozenset({"CRMID:John", "ECID:2", "Email:test@test.com"}),
    }


def test_ioa_4_anonymous_event_association() -> None:
    rows = ["CRMID: Kevin, ECID: E", "CRMID: Nora, ECID: E", "ECID: E", "CRMID: Kevin, ECID: E"]
    rules = {"unique": ["CRMID"], "priority": ["CRMID", "ECID"]}
    after_t3 = simulate("\n".join(rows[:3]), **rules)  # type: ignore[arg-type]
    assert graphs(after_t3) == {frozenset({"CRMID:Nora", "ECID:E"})}
    assert after_t3.rows[2].primary == Identity("ECID", "E")  # the anonymous event is keyed on ECID E
    final = simulate("\n".join(rows), **rules)  # type: ignore[arg-type]
    assert graphs(final) == {frozenset({"CRMID:Kevin", "ECID:E"})}
    # ECID E's profile id never changed: events keyed on it follow whoever owns E now
    g = final.graph
    assert g.profile_id(Identity("ECID", "E")) == g.profile_id(Identity("CRMID", "Kevin"))


def test_cfg_shared_device_drops_the_cookie_link_not_the_person_link() -> None:
    # §c5: Reading B keeps CRMID:Tom–loginID:ID_A and drops loginID:ID_A–ECID:111
    text = """
    CRMID: Tom, loginID: ID_A
    loginID: ID_A, ECID: 111
    CRMID: Summer, loginID: ID_B
    loginID: ID_B, ECID: 111
    """
    result = simulate(text, unique=["CRMID", "loginID"], priority=["CRMID", "loginID", "ECID"])
    assert graphs(result) == {
        frozenset({"CRMID:Tom", "loginID:ID_A"}),
        frozenset({"CRMID:Summer", "loginID:ID_B", "ECID:111"}),
    }


def test_id_cap_1_cookies_go_before_an_older_device() -> None:
    lines = ["CRMID: P, IDFA: dev-1", "CRMID: P, Email: e-2", "CRMID: P, ECID: ecid-3"]
    lines += [f"CRMID: P, ECID: ecid-{k}" for k in range(4, 50)]
    assert len(simulate("\n".join(lines)).graphs[0]) == 50
    result = simulate("\n".join([*lines, "CRMID: P, ECID: ecid-51"]))
    (graph,) = result.graphs
    names = {str(i) for i in graph}
    assert len(graph) == 50
    assert "ECID:ecid-3" not in names and "IDFA:dev-1" in names and "ECID:ecid-51" in names


def test_id_cap_2_removing_the_bridge_splits_the_graph() -> None:
    lines = ["CRMID: 60013, ECID: 35577", "CRMID: 25212, ECID: 35577"]
    lines += [f"CRMID: 60013, Email: a{k}@x" for k in range(24)]
    lines += [f"CRMID: 25212, Phone: {k}" for k in range(23)]
    assert [len(g) for g in simulate("\n".join(lines)).graphs] == [50]
    result = simulate("\n".join([*lines, "CRMID: 60013, ECID: 32110"]))
    assert len(result.graphs) == 2
    by_crm = {next(str(i) for i in g if i.namespace == "CRMID"): {str(i) for i in g} for g in result.graphs}
    assert "ECID:32110" in by_crm["CRMID:60013"] and len(by_crm["CRMID:60013"]) == 26
    assert len(by_crm["CRMID:25212"]) == 24
    assert result.graph.profile_id(Identity("ECID", "35577")) is None


def test_id_cap_3_hub_removed_and_isolated_spokes_dropped() -> None:
    lines = ["ECID: 35577, CRMID: 60013", "ECID: 35577, IDFA: 32110", "IDFA: 32110, Phone: 555"]
    lines += [f"ECID: 35577, IDFA: spoke-{k:02d}" for k in range(10)]
    lines += [f"CRMID: 60013, Email: m{k}@x" for k in range(36)]
    assert [len(g) for g in simulate("\n".join(lines)).graphs] == [50]
    result = simulate("\n".join([*lines, "CRMID: 60013, ECID: 21011"]))
    sizes = sorted(len(g) for g in result.graphs)
    assert sizes == [2, 38]  # {IDFA:32110, Phone:555} and CRM 60013's graph with ECID:21011
    g = result.graph
    assert all(g.profile_id(Identity("IDFA", f"spoke-{k:02d}")) is None for k in range(10))
    assert g.profile_id(Identity("ECID", "35577")) is None


def test_rejected_row_is_reported_and_not_linked() -> None:
    result = simulate("GAID: a, GAID: b, ECID: e", unique=["CRMID"], priority=["CRMID", "GAID", "ECID"])
    assert result.graphs == []
    assert result.rows[0].primary is None and result.rows[0].rejected is not None


def test_plain_connected_components_without_rules() -> None:
    result = simulate("A: 1, B: 1\nB: 1, C: 1\nD: 1, E: 1\nF: 1", limit=None)
    assert graphs(result) == {frozenset({"A:1", "B:1", "C:1"}), frozenset({"D:1", "E:1"})}
    assert [str(r.primary) for r in result.rows] == ["A:1", "B:1", "D:1", "F:1"]
