"""SQL introspection (`POST /query`, `durio sql`) against a real server: the same facts as the admin API.

The tour runs as a real `durio serve` process with Netflix down, so one
subscription keeps backing off while a saga has failed and compensated and an
object holds state. Every SQL answer is checked against what the admin API
says about the same invocations.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import typing

import httpx
import pytest
import trio

from tests.conftest import ROOT, TOUR_APP, ServerProcess

REQUEST = {"userId": "user-123", "creditCard": "4111111111111111"}


def durio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "durio.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[tuple[ServerProcess, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("sql")
    server = ServerProcess(TOUR_APP, folder / "data", folder / "server.log", {"TOUR_NETFLIX_DOWN": "1"})
    trio.run(server.start)
    ids: dict[str, str] = {}
    with httpx.Client(base_url=server.ingress_url, timeout=30) as client:
        netflix = client.post("/restate/send/SubscriptionService/add", json=dict(REQUEST, subscriptions=["Hulu", "Netflix"]))
        ids["netflix"] = netflix.json()["invocationId"]
        saga = client.post("/restate/call/SubscriptionSaga/add", json=dict(REQUEST, subscriptions=["Hulu", "Prime", "Disney"]))
        assert saga.status_code == 400
        ids["saga"] = saga.headers["x-restate-id"]
        for subscription in ("Hulu", "Prime"):
            client.post("/restate/call/UserSubscriptions/user-123/add", json=subscription)
        keyed = client.post(
            "/restate/call/ConcertTicketingService/buy",
            headers={"idempotency-key": "k-1"},
            json={"ticketId": "t-1", "price": 10, "customerEmail": "a@example.com", "concertDate": "2031-01-01T20:00:00Z"},
        )
        ids["buy"] = keyed.headers["x-restate-id"]
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        for _ in range(400):
            if admin.get(f"/invocations/{ids['netflix']}").json()["retry_count"] >= 3:
                break
            trio.run(trio.sleep, 0.05)
    yield server, ids
    server.terminate()


def query(server: ServerProcess, sql: str, **extra: typing.Any) -> httpx.Response:
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        return admin.post("/query", json={"query": sql, **extra})


def admin_get(server: ServerProcess, path: str, **params: str) -> typing.Any:
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        response = admin.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


def millis(text: str | None) -> int | None:
    return None if text is None else int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_durio_sql_lists_the_backing_off_invocations_the_admin_api_lists(tour) -> None:  # type: ignore[no-untyped-def]
    server, ids = tour
    admin_address = server.admin_url.removeprefix("http://")
    sql = "select id, target, status from sys_invocation where status = 'backing-off'"

    def admin_facts() -> set[tuple[str, str, str]]:
        listing = admin_get(server, "/invocations", status="backing-off", limit="1000")["invocations"]
        return {(view["id"], view["target"], view["status"]) for view in listing}

    # An attempt running at the moment of a query shows 'running' there: compare while no attempt starts or ends.
    for _ in range(20):
        before = admin_facts()
        answer = durio("sql", sql, "--admin", admin_address, "--json")
        after = admin_facts()
        if before == after:
            break
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["columns"] == ["id", "target", "status"]
    assert {(row["id"], row["target"], row["status"]) for row in result["rows"]} == before
    assert (ids["netflix"], "SubscriptionService/add", "backing-off") in before

    # The same race for the table form: an attempt running just then shows no backing-off row (0 rows, "(none)").
    for _ in range(20):
        human = durio("sql", sql, "--admin", admin_address)
        if human.returncode != 0 or ids["netflix"] in human.stdout:
            break
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].split() == ["ID", "TARGET", "STATUS"]
    assert any(ids["netflix"] in line and "backing-off" in line for line in lines)
    assert lines[-1].startswith("(") and "row" in lines[-1]


def test_the_journal_joined_with_its_invocation_is_the_admin_apis_journal(tour) -> None:  # type: ignore[no-untyped-def]
    server, ids = tour
    response = query(
        server,
        """
        select i.id, i.target, i.status, i.completion_result, j.index, j.entry_type, j.name, j.completed, j.invoked_id
        from sys_journal j join sys_invocation i on j.id = i.id
        where i.target_service_name = 'SubscriptionSaga'
        order by i.id, j.index""",
    )
    assert response.status_code == 200, response.text
    rows = [row for row in response.json()["rows"] if row["id"] == ids["saga"]]
    view = admin_get(server, f"/invocations/{ids['saga']}")
    journal = view["journal"]
    assert [row["index"] for row in rows] == [entry["index"] for entry in journal]
    assert {row["target"] for row in rows} == {view["target"]} and {row["status"] for row in rows} == {"completed"}
    assert {row["completion_result"] for row in rows} == {"failure"}
    for row, entry in zip(rows, journal):
        assert row["name"] == entry.get("name"), (row, entry)
        if entry["type"] == "run":
            assert row["entry_type"] == "Command: Run"
            assert row["completed"] == (1 if "completed_at" in entry else 0)
        elif entry["type"] == "completion":
            command = next(e for e in journal if e.get("completion_id") == entry["completion_id"] and e["type"] != "completion")
            assert row["entry_type"] == f"Notification: {command['type'].capitalize()}"
        else:
            assert row["entry_type"].startswith("Command: ") and row["entry_type"][9:].lower() == entry["type"].replace("_", "")
    run_names = [row["name"] for row in rows if row["entry_type"] == "Command: Run"]
    assert run_names == [entry["name"] for entry in journal if entry["type"] == "run"]
    assert run_names[-4:] == ["undo-Disney", "undo-Prime", "undo-Hulu", "undo-pay"]

    # Restate's own queries name `index` bare (DataFusion allows it); so does durio.
    bare = query(server, f"select id, index, entry_type from sys_journal where id = '{ids['saga']}' order by index desc limit 1")
    assert bare.status_code == 200, bare.text
    assert bare.json()["rows"] == [{"id": ids["saga"], "index": len(journal) - 1, "entry_type": rows[-1]["entry_type"]}]


def test_every_invocation_row_states_the_admin_apis_facts(tour) -> None:  # type: ignore[no-untyped-def]
    server, ids = tour
    rows = query(server, "select * from sys_invocation where status = 'completed'").json()["rows"]
    assert {ids["saga"], ids["buy"]} <= {row["id"] for row in rows}
    for row in rows:
        view = admin_get(server, f"/invocations/{row['id']}")
        assert row["target"] == view["target"]
        assert row["target_service_name"] == view["target_service_name"]
        assert row["target_service_key"] == view["target_service_key"]
        assert row["target_handler_name"] == view["target_handler_name"]
        assert millis(row["created_at"]) == millis(view["created_at"])
        assert millis(row["modified_at"]) == millis(view["modified_at"])
        assert millis(row["completed_at"]) == millis(view["completed_at"])
        assert row["retry_count"] == view["retry_count"]
        assert row["idempotency_key"] == view["idempotency_key"]
        assert row["invoked_by_id"] == view["invoked_by"]
        assert row["invoked_by"] == ("service" if view["invoked_by"] else "ingress")
        assert row["completion_result"] == view["completion_result"]
        if view["completion_result"] == "failure":
            failure = view["completion_failure"]
            assert row["completion_failure"] == f"[{failure['code']}] {failure['message']}"
        assert row["journal_size"] == len(view["journal"])
    callees = [row for row in rows if row["invoked_by"] == "service"]
    assert callees, "the concert purchase called PaymentService"
    for row in callees:
        caller = admin_get(server, f"/invocations/{row['invoked_by_id']}")
        assert row["invoked_by_target"] == caller["target"]
        assert row["invoked_by_service_name"] == caller["target_service_name"]

    netflix = query(
        server,
        f"select retry_count, last_failure, last_failure_related_entry_name from sys_invocation where id = '{ids['netflix']}'",
    ).json()["rows"]
    view = admin_get(server, f"/invocations/{ids['netflix']}")
    assert len(netflix) == 1 and netflix[0]["retry_count"] >= 3
    assert netflix[0]["last_failure"] == view["last_failure"]["message"]
    assert netflix[0]["last_failure_related_entry_name"] == "add-Netflix"

    keyed = query(
        server, "select invocation_id, service_name, service_handler from sys_idempotency where idempotency_key = 'k-1'"
    ).json()["rows"]
    assert keyed == [{"invocation_id": ids["buy"], "service_name": "ConcertTicketingService", "service_handler": "buy"}]


def test_state_services_and_counts_match_the_admin_api(tour) -> None:  # type: ignore[no-untyped-def]
    server, _ = tour
    state = admin_get(server, "/state/UserSubscriptions/user-123")["state"]
    rows = query(
        server,
        "select key, value_utf8, value_length from state "
        "where service_name = 'UserSubscriptions' and service_key = 'user-123' order by key",
    ).json()["rows"]
    assert {row["key"]: json.loads(row["value_utf8"]) for row in rows} == state
    assert all(row["value_length"] == len(row["value_utf8"].encode()) for row in rows)

    services = admin_get(server, "/services")["services"]
    answered = query(server, "select name, ty from sys_service order by name").json()["rows"]
    kinds = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}
    assert answered == sorted(({"name": s["name"], "ty": kinds[s["ty"]]} for s in services), key=lambda r: r["name"])

    counts = query(server, "select status, count(*) as n from sys_invocation where status = 'completed' group by status").json()
    total = admin_get(server, "/invocations", status="completed", limit="1")["total"]
    assert counts["rows"] == [{"status": "completed", "n": total}]


def test_a_bad_query_is_a_400_with_the_engines_message_and_changes_nothing(tour) -> None:  # type: ignore[no-untyped-def]
    server, ids = tour
    cases = {
        "selec 1": 'near "selec": syntax error',
        "select * from sys_nope": "no such table: sys_nope",
        "select nope from sys_invocation": "no such column: nope",
        "delete from sys_invocation": "may not be modified",
        "update sys_invocation set status = 'completed'": "may not be modified",
        "create table t(x int)": "only reading queries",
        "attach database '/tmp/x.db' as x": "only reading queries",
        "pragma writable_schema = 1": "only reading queries",
        "select 1; delete from sys_invocation": "one statement at a time",
        "": "the query is empty",
    }
    for sql, message in cases.items():
        response = query(server, sql)
        assert response.status_code == 400, (sql, response.text)
        assert message in response.json()["message"], (sql, response.text)
    with httpx.Client(base_url=server.admin_url, timeout=30) as admin:
        assert admin.post("/query", content=b"not json").status_code == 400
        assert admin.post("/query", json={"sql": "select 1"}).status_code == 400
        assert admin.get("/query").status_code == 405
    assert admin_get(server, f"/invocations/{ids['saga']}")["status"] == "completed"

    failed = durio("sql", "select * from sys_nope", "--admin", server.admin_url.removeprefix("http://"))
    assert failed.returncode == 1 and "400" in failed.stderr and "no such table: sys_nope" in failed.stderr


def test_the_row_limit_cuts_the_answer_and_says_so(tour) -> None:  # type: ignore[no-untyped-def]
    server, _ = tour
    everything = query(server, "select id, index from sys_journal").json()
    assert "truncated" not in everything and len(everything["rows"]) > 3
    cut = query(server, "select id, index from sys_journal", limit=3).json()
    assert cut["truncated"] is True and cut["rows"] == everything["rows"][:3]
    assert query(server, "select 1", limit=0).status_code == 400
