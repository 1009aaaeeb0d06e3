"""Several fakes on one Redis act as one fake: real `mockserver serve` processes (real uvicorn) on a
real redis-server, steered through their HTTP APIs as a team would."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import BODIES, SUBMIT
from tests.services import RedisServer, Replica, replicas

pytest_plugins = ["pytester"]
KEY = {"Authorization": "Bearer sk-team-key"}
BODY = BODIES["seed"]


def submit(base: str, headers: dict[str, str] | None = None, **body: object) -> httpx.Response:
    return httpx.post(base + SUBMIT, json={**BODY, **body}, headers={**KEY, **(headers or {})}, timeout=10)


def poll(base: str, task_id: str) -> httpx.Response:
    return httpx.get(f"{base}/v1/tasks/{task_id}", headers=KEY, timeout=10)


def admin(base: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, f"{base}/__admin{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def args(url: str, *more: str) -> list[str]:
    return ["--store", url, "--clock", "manual", "--log-level", "warning", *more]


def test_a_task_created_on_one_replica_is_polled_and_downloaded_on_the_other(redis_url: str) -> None:
    with replicas(2, args(redis_url)) as (a, b):
        task_id = submit(a.url, aspect_ratio="9:16").json()["id"]
        assert poll(b.url, task_id).json()["status"] == "pending"
        admin(b.url, "POST", "/clock/advance", json={"seconds": 30})
        first = poll(a.url, task_id).json()
        assert first["status"] == "processing" and first["progress"] > 0
        admin(a.url, "POST", "/clock/advance", json={"seconds": 90})
        done = poll(b.url, task_id).json()
        assert done["status"] == "completed" and done["results"][0]["height"] == 1280
        video = httpx.get(done["results"][0]["url"].replace(a.url, b.url), timeout=10)
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        views = [admin(r.url, "GET", f"/tasks/{task_id}").json() for r in (a, b)]
        for view in views:  # result URLs name the replica asked; all else is the same
            view["task"]["results"][0]["url"] = view["task"]["results"][0]["url"].rsplit("/", 1)[1]
        assert views[0] == views[1] and views[0]["polls"] == 3


def test_admin_calls_on_one_replica_steer_the_other(redis_url: str) -> None:
    with replicas(2, args(redis_url)) as (a, b):
        assert admin(b.url, "PUT", "/scenarios/default", json={"scenario": "fast"}).status_code == 200
        assert admin(a.url, "GET", "/scenarios/default").json()["scenario"] == "fast"
        fast = submit(a.url).json()["id"]
        admin(b.url, "POST", "/scenarios/next", json={"scenario": "content-policy", "count": 2})
        assert admin(a.url, "GET", "/scenarios/next").json() == {"next": [{"scenario": "content-policy", "count": 2}]}
        pushed = [submit(r.url).json()["id"] for r in (a, b)]
        assert admin(a.url, "GET", "/scenarios/next").json() == {"next": []}
        tasks = {t["id"]: t for t in admin(b.url, "GET", "/tasks").json()["tasks"]}
        assert tasks[fast]["scenario"] == "fast"
        assert [tasks[i]["selected_by"] for i in pushed] == ["pushed", "pushed"]
        assert admin(b.url, "POST", f"/tasks/{fast}/fail", json={"code": "resource_exhausted"}).status_code == 200
        assert poll(a.url, fast).json()["error"]["code"] == "resource_exhausted"
        stalled = submit(b.url).json()["id"]
        admin(a.url, "POST", f"/tasks/{stalled}/stall")
        admin(b.url, "POST", "/clock/advance", json={"seconds": 100})
        assert poll(b.url, stalled).json()["status"] == "pending"
        admin(b.url, "POST", f"/tasks/{stalled}/resume")
        admin(a.url, "POST", "/clock/advance", json={"seconds": 10})
        assert poll(a.url, stalled).json()["status"] == "completed"
        journal = admin(b.url, "GET", f"/requests?task_id={stalled}").json()["requests"]
        assert [e["method"] for e in journal] == ["GET", "GET", "POST"]  # newest first, from both replicas
        assert admin(a.url, "POST", "/reset").status_code == 200
        assert admin(b.url, "GET", "/tasks").json()["count"] == 0
        assert admin(b.url, "GET", "/requests").json()["count"] == 0
        assert admin(b.url, "GET", "/scenarios/default").json()["scenario"] == "default"
        assert poll(b.url, fast).status_code == 404


def test_a_manual_advance_on_one_replica_moves_every_replica(redis_url: str) -> None:
    with replicas(2, args(redis_url)) as (a, b):
        before = admin(a.url, "GET", "/clock").json()["now"]
        moved = admin(b.url, "POST", "/clock/advance", json={"seconds": 3600}).json()["now"]
        assert moved == pytest.approx(before + 3600, abs=0.01)
        assert admin(a.url, "GET", "/clock").json()["now"] == moved
        admin(a.url, "PUT", "/clock", json={"mode": "real", "speed": 60})
        assert admin(b.url, "GET", "/clock").json()["mode"] == "real"


def test_rate_limited_then_ok_counts_across_three_replicas(redis_url: str) -> None:
    key = {"Authorization": "Bearer sk-qa-rate-limited-then-ok"}
    with replicas(3, args(redis_url)) as group:
        answers = [submit(r.url, headers=key) for r in group]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "2"


def test_counters_pushes_and_held_steps_stay_exact_under_concurrency(redis_url: str) -> None:
    with replicas(2, args(redis_url)) as (a, b), ThreadPoolExecutor(max_workers=32) as pool:
        urls = [a.url, b.url] * 150

        # A push for 40 submissions is used exactly 40 times by 300 concurrent submissions.
        admin(a.url, "POST", "/scenarios/next", json={"scenario": "content-policy", "count": 40})
        created = list(pool.map(lambda url: submit(url).json()["id"], urls))
        tasks = admin(b.url, "GET", "/tasks").json()["tasks"]
        assert len(tasks) == len(set(created)) == 300
        assert sum(t["selected_by"] == "pushed" for t in tasks) == 40
        assert sum(t["scenario"] == "content-policy" for t in tasks) == 40

        # Per-key counters: of 300 concurrent submissions with one key, exactly the first two get 429.
        key = {"Authorization": "Bearer sk-qa-rate-limited-then-ok"}
        statuses = list(pool.map(lambda url: submit(url, headers=key).status_code, urls))
        assert statuses.count(429) == 2 and statuses.count(200) == 298
        assert admin(a.url, "GET", "/tasks").json()["count"] == 598  # listed page by page

        # Exactly one of 300 concurrent polls sees "completed" without results.
        task_id = submit(a.url, headers={"X-Mock-Scenario": "completed-before-results"}).json()["id"]
        admin(b.url, "POST", "/clock/advance", json={"seconds": 600})
        seen = list(pool.map(lambda url: poll(url, task_id).json(), urls))
        assert all(s["status"] == "completed" for s in seen)
        assert sum(s["results"] is None for s in seen) == 1
        assert admin(a.url, "GET", f"/tasks/{task_id}").json()["polls"] == 300


def test_a_killed_replica_loses_nothing_and_a_restarted_one_serves_the_task(redis_url: str) -> None:
    a = Replica(args(redis_url)).start()
    try:
        with replicas(1, args(redis_url)) as (b,):
            task_id = submit(a.url).json()["id"]
            admin(a.url, "POST", "/clock/advance", json={"seconds": 45})
            midway = poll(a.url, task_id).json()
            assert midway["status"] == "processing"
            a.stop(signal.SIGKILL)  # as an OOM kill: no goodbye
            assert poll(b.url, task_id).json()["progress"] == midway["progress"]
            a = Replica(args(redis_url), port=a.port).start()  # the same address, as a restarted pod
            assert poll(a.url, task_id).json()["progress"] == midway["progress"]
            admin(b.url, "POST", "/clock/advance", json={"seconds": 60})
            assert poll(a.url, task_id).json()["status"] == "completed"
            assert admin(a.url, "GET", f"/tasks/{task_id}").json()["polls"] == 4
    finally:
        a.stop()


def _store_down(replica: Replica) -> None:
    started = time.monotonic()
    answer = submit(replica.url)
    assert time.monotonic() - started < 2.0
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "store_unavailable" and error["type"] == "service_unavailable_error"
    started = time.monotonic()
    assert poll(replica.url, "task-unified-1757165031-abcdefgh").json()["error"]["code"] == "store_unavailable"
    tasks = admin(replica.url, "GET", "/tasks")
    assert tasks.status_code == 503 and tasks.json()["error"]["code"] == "store_unavailable"
    health = admin(replica.url, "GET", "/health")
    assert health.status_code == 503 and health.json()["status"] != "ok"
    assert health.json()["store"]["status"] == "down"
    assert time.monotonic() - started < 6.0  # three requests, each within two seconds


def _healed(request: Callable[[], httpx.Response]) -> httpx.Response:
    """The first answer that is not a 503 (a replica waits a quarter of a second between attempts
    to reach a store that failed); at most two seconds."""
    deadline = time.monotonic() + 2.0
    while (answer := request()).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


def test_redis_going_away_gives_provider_shaped_503s_and_heals_without_a_restart() -> None:
    with RedisServer() as redis_server, replicas(1, args(redis_server.url)) as (replica,):
        task_id = submit(replica.url).json()["id"]
        redis_server.pause()  # hung: answers nothing
        _store_down(replica)
        redis_server.resume()
        assert _healed(lambda: poll(replica.url, task_id)).status_code == 200  # back, with its task
        redis_server.stop(signal.SIGKILL)  # gone: connections refused
        _store_down(replica)
        redis_server.start()  # back, empty (persistence is off): the replica brings back what it knows
        assert _healed(lambda: submit(replica.url)).status_code == 200
        assert admin(replica.url, "GET", "/health").json()["status"] == "ok"
        assert replica.process is not None and replica.process.poll() is None
        output = replica.stop()
    assert "Traceback" not in output


def test_workers_share_one_store(redis_url: str) -> None:
    with replicas(1, args(redis_url, "--workers", "2")) as (server,):
        created = [submit(server.url).json()["id"] for _ in range(20)]  # a new connection each: both workers answer
        assert admin(server.url, "GET", "/health").json()["replicas"] == 2
        admin(server.url, "POST", "/clock/advance", json={"seconds": 100})
        assert {poll(server.url, task_id).json()["status"] for task_id in created} == {"completed"}
        assert admin(server.url, "GET", "/tasks").json()["count"] == 20


PASSWORD = "pw-W0rkers-7Qx"


def _process_tree(pid: int) -> list[int]:
    """`pid` and every process under it, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue  # gone meanwhile
    tree = [pid]
    for parent in tree:
        tree += [child for child, of in parents.items() if of == parent]
    return tree


def _holding_the_password(pid: int) -> list[str]:
    """Which of the process's environment and command line hold the store's password."""
    return [part for part in ("environ", "cmdline") if PASSWORD.encode() in Path(f"/proc/{pid}/{part}").read_bytes()]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def _workers(supervisor: int) -> set[int]:
    """The supervisor's live workers; a process reaped between the listing and the read is none."""
    return {pid for pid in _process_tree(supervisor)[1:] if b"spawn_main" in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # gone meanwhile (a killed worker reaped by its supervisor)


def _until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"{what} within 20 s"
        time.sleep(0.05)


@pytest.mark.parametrize("given", ["flag", "variable"])
def test_workers_get_the_store_password_in_no_environment_or_command_line(given: str) -> None:
    """`--workers 2` on a Redis with a password, given as the flag or the variable: the workers (and
    the worker restarted after a crash) have it in neither their environment nor their command line;
    only the serve process itself holds it, where the user put it. They serve, and stop on SIGTERM
    or Ctrl-C."""
    with RedisServer(password=PASSWORD) as store:
        flag, env = (["--store", store.url], None) if given == "flag" else ([], {"MOCKSERVER_STORE": store.url})
        replica = Replica([*flag, "--workers", "2", "--clock", "manual", "--log-level", "info"], env).start()
        assert replica.process is not None
        supervisor = replica.process.pid
        try:
            _until(lambda: admin(replica.url, "GET", "/health").json()["replicas"] == 2, "both workers on the store")
            workers = _workers(supervisor)
            assert len(workers) == 2
            assert _holding_the_password(supervisor) == ["cmdline" if given == "flag" else "environ"]
            for pid in _process_tree(supervisor)[1:]:  # the workers and multiprocessing's resource tracker
                assert _holding_the_password(pid) == [], Path(f"/proc/{pid}/cmdline").read_bytes()
            created = [submit(replica.url).json()["id"] for _ in range(10)]  # a new connection each
            killed = next(iter(workers))
            os.kill(killed, signal.SIGKILL)  # a worker crashes: the supervisor starts another
            _until(lambda: not _running(killed), "the killed worker gone")  # never taken for the new one
            _until(lambda: len(_workers(supervisor) - workers) == 1, "a new worker")
            (restarted,) = _workers(supervisor) - workers
            assert _holding_the_password(restarted) == []
            created += [submit(replica.url).json()["id"] for _ in range(10)]
            admin(replica.url, "POST", "/clock/advance", json={"seconds": 100})
            assert {poll(replica.url, task_id).json()["status"] for task_id in created} == {"completed"}
            tree = _process_tree(supervisor)
            replica.process.send_signal(signal.SIGTERM if given == "flag" else signal.SIGINT)  # the supervisor only
            assert replica.wait() == 0
            _until(lambda: not [pid for pid in tree if _running(pid)], "every worker ends with the supervisor")
        finally:
            output = replica.stop()
    assert "Traceback" not in output and PASSWORD not in output
    assert "Received SIGTERM, exiting." in output if given == "flag" else "Received SIGINT, exiting." in output


def test_workers_with_the_memory_store_are_refused() -> None:
    replica = Replica(["--workers", "2"]).start(wait=False)
    assert replica.wait() == 2
    assert "--store redis://" in replica.output


def test_an_unreachable_or_hung_redis_at_start_up_is_a_clear_error_without_the_password() -> None:
    with RedisServer(password="s3cret-pw") as hung:
        closed = RedisServer()  # never started: nothing listens on its port
        for url, reason in [
            (f"redis://:s3cret-pw@127.0.0.1:{closed.port}/0", "is unreachable"),
            (hung.url, "did not answer within"),
        ]:
            if url == hung.url:
                hung.pause()
            replica = Replica(["--log-level", "debug"], env={"MOCKSERVER_STORE": url}).start(wait=False)
            assert replica.wait() == 2
            assert reason in replica.output and "redis://:***@127.0.0.1:" in replica.output
            assert "s3cret-pw" not in replica.output and "Traceback" not in replica.output
        hung.resume()


def test_the_password_stays_out_of_output_health_and_errors() -> None:
    with RedisServer(password="pw-Zq81x") as server:
        env = {"MOCKSERVER_STORE": server.url}
        with replicas(1, ["--log-level", "debug", "--clock", "manual"], env) as (replica,):
            health = admin(replica.url, "GET", "/health").text
            task_id = submit(replica.url).json()["id"]
            server.stop(signal.SIGKILL)
            errors = [
                submit(replica.url).text,
                poll(replica.url, task_id).text,
                admin(replica.url, "GET", "/health").text,
            ]
            output = replica.stop()
    assert "redis://:***@127.0.0.1" in health and "redis://:***@127.0.0.1" in output
    for text in [health, *errors, output]:
        assert "pw-Zq81x" not in text


def test_a_replica_that_plays_other_scenarios_refuses_to_start(redis_url: str, tmp_path: Path) -> None:
    extra = tmp_path / "qa"
    extra.mkdir()
    (extra / "mine.yaml").write_text(
        "name: mine\ndescription: Only on one replica.\ntimeline:\n  - {at: 0, status: pending}\n  - {at: 5, status: completed}\n"
    )
    first = Replica(args(redis_url)).start()
    try:
        other = Replica(args(redis_url, "--scenarios", str(extra))).start(wait=False)
        assert other.wait() == 2
        assert "scenario mine only on this replica" in other.output
        other_contract = Replica(args(redis_url, "--contract", "current")).start(wait=False)
        assert other_contract.wait() == 2
        assert "contract differs" in other_contract.output
        # the live replica as another version would have written it (other scripts, other keys)
        store = redis.Redis.from_url(redis_url)
        (key,) = store.keys("{mockserver}:*fingerprint")  # the default prefix (the session's shared fake has its own)
        stored = json.loads(store.get(key))
        ours = stored["store layout"]
        store.set(key, json.dumps({**stored, "store layout": "0123456789ab"}))
        other_version = Replica(args(redis_url)).start(wait=False)
        assert other_version.wait() == 2
        assert f"store layout differs (here {ours}, there 0123456789ab)" in other_version.output
        store.set(key, json.dumps(stored))
    finally:
        first.stop()  # a clean stop leaves the list of live replicas
    takeover = Replica(args(redis_url, "--scenarios", str(extra))).start()
    try:
        assert submit(takeover.url, headers={"X-Mock-Scenario": "mine"}).status_code == 200
    finally:
        output = takeover.stop()
    assert "took over the store" in output


def test_store_prefixes_keep_fakes_apart_and_task_keys_expire(redis_server: RedisServer, redis_url: str) -> None:
    with (
        replicas(1, args(redis_url, "--store-prefix", "team-a", "--task-retention", "600")) as (a,),
        replicas(1, args(redis_url, "--store-prefix", "team-b")) as (b,),
    ):
        task_id = submit(a.url).json()["id"]
        assert poll(b.url, task_id).status_code == 404
        assert admin(b.url, "GET", "/tasks").json()["count"] == 0
        client = redis_server.client()
        ttl = client.pttl("{team-a}:t:0:" + task_id)
        assert 600_000 < ttl <= (90 + 600 + 1) * 1000  # the lifecycle (90 s) plus the retention, at speed 1
        assert client.pttl("{team-a}:journal") == -1  # the journal is capped, not expired
        # (the session's own shared fake, conftest's "shared-fake", may write its heartbeat meanwhile)
        assert all(key.startswith(("{team-a}:", "{team-b}:", "{shared-fake}:")) for key in client.keys("*"))


def test_live_servers_and_the_plugin_take_a_store_url(redis_url: str) -> None:
    from mockserver.settings import Settings
    from mockserver.testing import LiveServer

    settings = Settings(clock="manual", store=redis_url, store_prefix="plugin")
    with LiveServer(settings) as one, LiveServer(settings) as two:
        task_id = submit(one.url).json()["id"]
        two.call(two.runtime.advance(100))
        assert poll(one.url, task_id).json()["status"] == "completed"
        found = one.call(one.runtime.task(task_id))
        assert found.task.polls == 1 and one.runtime.state.kind == "redis"


def test_the_plugin_runs_on_a_store_url(pytester: pytest.Pytester, redis_url: str) -> None:
    pytester.makeconftest(
        f"""
        import pytest
        from mockserver.settings import Settings

        @pytest.fixture(scope="session")
        def mockserver_settings():
            return Settings(clock="manual", store={redis_url!r}, store_prefix="pytester")
        """
    )
    pytester.makepyfile(
        """
        import httpx

        def test_it(mockserver):
            mockserver.push("rate-limited-then-ok", count=3)
            body = {"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/v.mp4"}
            headers = {"Authorization": f"Bearer {mockserver.api_key}"}
            codes = [httpx.post(mockserver.url + "/v1/videos/generations", json=body, headers=headers).status_code
                     for _ in range(3)]
            assert codes == [429, 429, 200]
            assert mockserver.runtime.state.kind == "redis"
            assert mockserver.count(status=429) == 2
        """
    )
    assert pytester.runpytest_subprocess().ret == 0


def test_a_redis_that_refuses_writes_is_a_store_outage_not_a_server_error() -> None:
    with RedisServer() as redis_server, replicas(1, args(redis_server.url)) as (replica,):
        task_id = submit(replica.url).json()["id"]
        redis_server.client().config_set("maxmemory", "1")  # every write now: OOM
        answer = submit(replica.url)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "store_unavailable"
        assert "maxmemory" in answer.json()["error"]["message"]
        assert admin(replica.url, "POST", "/clock/advance", json={"seconds": 1}).status_code == 503
        health = admin(replica.url, "GET", "/health")
        assert health.status_code == 503 and health.json()["store"]["status"] == "down"
        redis_server.client().config_set("maxmemory", "0")
        assert poll(replica.url, task_id).status_code == 200
        output = replica.stop()
    assert "Traceback" not in output


def test_a_connection_closed_while_idle_is_opened_again_without_a_failure(
    redis_url: str, redis_server: RedisServer
) -> None:
    with replicas(1, args(redis_url)) as (replica,):
        task_id = submit(replica.url).json()["id"]
        killed = redis_server.client().client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1  # as Redis's idle timeout or a proxy would
        assert [poll(replica.url, task_id).status_code for _ in range(5)] == [200] * 5


def test_an_admin_change_keeps_the_retention_at_the_clocks_current_pace(
    redis_url: str, redis_server: RedisServer
) -> None:
    with replicas(2, args(redis_url, "--task-retention", "30")) as (a, b):
        task_id = submit(a.url).json()["id"]
        admin(b.url, "PUT", "/clock", json={"mode": "real", "speed": 0.01})  # a hundred times slower
        key = "{mockserver}:t:0:" + task_id
        stretched = redis_server.client().pttl(key)
        assert stretched > 100 * 100_000  # (90 s + 30 s) of scenario time at x0.01
        admin(a.url, "POST", f"/tasks/{task_id}/stall")
        assert redis_server.client().pttl(key) > 100 * 30_000  # still at x0.01, whoever acts


def test_a_takeover_starts_from_the_new_sets_clock_and_choices(redis_url: str) -> None:
    old = Replica(["--store", redis_url, "--clock", "real", "--log-level", "warning"]).start()
    admin(old.url, "PUT", "/scenarios/default", json={"scenario": "fast"})
    admin(old.url, "POST", "/scenarios/next", json={"scenario": "content-policy", "count": 5})
    old.stop()
    with replicas(1, args(redis_url, "--scenario", "fast")) as (new,):
        assert admin(new.url, "GET", "/clock").json()["mode"] == "manual"
        assert admin(new.url, "GET", "/scenarios/next").json() == {"next": []}
        assert admin(new.url, "GET", "/scenarios/default").json()["scenario"] == "fast"
        output = new.stop()
    assert "took over the store" in output


def test_a_reset_elsewhere_forgets_scenarios_added_at_run_time(redis_url: str) -> None:
    from mockserver.scenarios import parse
    from mockserver.settings import Settings
    from mockserver.testing import LiveServer

    settings = Settings(clock="manual", store=redis_url, store_prefix="added")
    mine = parse(
        {"name": "mine", "description": "Added at run time.", "timeline": [{"at": 0, "status": "pending"}]}, "<test>"
    )
    with LiveServer(settings) as one, LiveServer(settings) as two:
        one.runtime.add_scenario(mine)
        one.call(one.runtime.set_default("mine"))
        assert submit(two.url).status_code == 200  # the other replica plays it too
        assert two.call(two.runtime.default()).name == "mine"
        two.call(two.runtime.reset())
        deadline = time.monotonic() + 5
        while "mine" in one.runtime.scenarios and time.monotonic() < deadline:
            time.sleep(0.01)  # the reset reaches the other replica through Redis's pub/sub
        assert "mine" not in one.runtime.scenarios
        assert submit(one.url, headers={"X-Mock-Scenario": "mine"}).status_code == 400


# Tasks submitted through the store directly (one script each: 511 take a fraction of a second),
# each group with a shorter lifecycle than the one before, so that the newer a task the sooner it
# expires: read in expiry order, the newest would be the last of more than 500.
_LIFETIMES = ["generation-timeout", "stalled-progress", "default"]  # lifecycles of 610, 330 and 90 s


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_the_dashboard_shows_the_newest_task_first_among_more_than_500(store: str, redis_url: str) -> None:
    from mockserver.settings import Settings
    from mockserver.state import Submission
    from mockserver.testing import LiveServer
    from mockserver.ui.base import SCAN_SHARED

    shared = {"store": redis_url, "store_prefix": "newest"} if store == "redis" else {}
    settings = Settings(clock="manual", task_retention=600, **shared)
    with LiveServer(settings) as server:
        state, scenarios = server.runtime.state, server.runtime.scenarios

        async def create(names: list[str]) -> list[str]:
            made = []
            for name in names:
                submitted = await state.submit(
                    Submission("key-newest", "veo-3.1-extend", "16:9", False, scenarios[name])
                )
                assert submitted.task is not None
                made.append(submitted.task.id)
            return made

        created = server.call(create([name for name in _LIFETIMES for _ in range(170)] + ["fast"]))
        newest, total, _ = server.call(state.newest_tasks(SCAN_SHARED))
        assert total == 511
        assert [task.id for task in newest] == created[::-1][:SCAN_SHARED]  # newest first, the fresh one at the top
        page = httpx.get(server.url + "/__admin/ui", timeout=10)
        assert page.status_code == 200
        rows = re.findall(r'<tr data-task="([^"]+)"', page.text)
        assert rows[:3] == created[::-1][:3] and "511 in the store" in page.text
        if store == "redis":  # a task whose key Redis dropped (memory pressure) leaves the index when read
            client = redis.Redis.from_url(redis_url, decode_responses=True)
            client.delete("{newest}:t:0:" + created[-2])
            newest, total, _ = server.call(state.newest_tasks(SCAN_SHARED))
            assert created[-2] not in [task.id for task in newest] and total == 510
            assert client.zcard("{newest}:made:0") == 510
            newest, _, _ = server.call(state.newest_tasks(SCAN_SHARED))
            expected = [created[-1], *created[::-1][2 : SCAN_SHARED + 1]]
            assert [task.id for task in newest] == expected
            client.delete("{newest}:made:0")  # as a store written by a version without the index...
            with LiveServer(settings) as joined:  # ...which the next replica to join builds
                newest, _, _ = joined.call(joined.runtime.state.newest_tasks(SCAN_SHARED))
            assert [task.id for task in newest] == expected
            server.call(server.runtime.reset())
            assert not client.exists("{newest}:made:0")  # a reset drops the old generation's index at once


def test_a_running_replica_stops_serving_while_another_set_holds_the_store_and_serves_again_after(
    tmp_path: Path,
) -> None:
    extra = tmp_path / "qa"
    extra.mkdir()
    (extra / "mine.yaml").write_text(
        "name: mine\ndescription: Only on one replica.\ntimeline:\n  - {at: 0, status: pending}\n  - {at: 5, status: completed}\n"
    )
    with RedisServer() as redis_server, replicas(1, args(redis_server.url)) as (a,):
        assert submit(a.url).status_code == 200
        assert admin(a.url, "GET", "/requests").json()["count"] == 1  # its journal write is confirmed: none in flight
        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)  # frozen (a paused VM, a stopped container): it cannot say it is alive
        try:
            redis_server.client().flushall()  # meanwhile Redis loses its data (as a restart without persistence)...
            other = Replica(args(redis_server.url, "--scenarios", str(extra))).start()  # ...and another set joins
        finally:
            a.process.send_signal(signal.SIGCONT)
        try:
            health = admin(a.url, "GET", "/health")  # its health check finds out at once (so does its heartbeat)
            assert health.status_code == 503 and health.json()["store"]["status"] == "down"
            refused = submit(a.url)
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_unavailable"
            message = refused.json()["error"]["message"]
            assert (
                "does not play what the 1 live replica(s)" in message and "scenario mine only on the others" in message
            )
            assert "This replica stopped serving" in message
            assert submit(other.url, headers={"X-Mock-Scenario": "mine"}).status_code == 200  # the other set serves
            assert admin(other.url, "GET", "/health").json()["replicas"] == 1
        finally:
            other.stop()  # a clean stop: the other set is gone at once
        health = admin(a.url, "GET", "/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert submit(a.url).status_code == 200
        assert submit(a.url, headers={"X-Mock-Scenario": "mine"}).status_code == 400  # its own set again
        output = a.stop()
    assert "this replica took it over again and serves" in output and "Traceback" not in output
