"""The pytest plugin, as a user of the package meets it: the `mockserver` fixture."""

from __future__ import annotations

import httpx
import pytest

pytest_plugins = ["pytester"]


def submit(mockserver, **body) -> httpx.Response:
    payload = {"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/v.mp4", **body}
    return httpx.post(
        f"{mockserver.url}/v1/videos/generations",
        json=payload,
        headers={"Authorization": f"Bearer {mockserver.api_key}"},
    )


def test_the_fixture_controls_the_fake_from_python(mockserver) -> None:
    mockserver.push("rate-limited-then-ok", count=3)
    assert [submit(mockserver).status_code for _ in range(3)] == [429, 429, 200]
    task_id = mockserver.tasks()[0]["id"]
    assert mockserver.tasks(scenario="rate-limited-then-ok")[0]["selected_by"] == "pushed"
    mockserver.advance(20)
    assert mockserver.task(task_id)["task"]["status"] == "completed"
    assert mockserver.count(method="POST", path="/v1/videos/generations") == 3
    assert mockserver.count(status=429) == 2
    mockserver.assert_requested("POST", "/v1/videos/generations", times=3)


def test_each_test_starts_from_a_reset_fake(mockserver) -> None:
    assert mockserver.tasks() == [] and mockserver.requests() == []


def test_forcing_states_from_python(mockserver) -> None:
    task_id = submit(mockserver).json()["id"]
    mockserver.stall(task_id)
    mockserver.advance(500)
    assert mockserver.task(task_id)["task"]["status"] == "pending"
    mockserver.resume(task_id)
    mockserver.fail(task_id, "content_policy_violation", "No.")
    assert mockserver.task(task_id)["task"]["error"]["code"] == "content_policy_violation"
    other = submit(mockserver).json()["id"]
    mockserver.complete(other)
    assert mockserver.task(other)["task"]["results"][0]["url"].startswith(mockserver.url)
    mockserver.set_default("expired-key")
    assert submit(mockserver).status_code == 401
    mockserver.set_default("default")
    cancelled = submit(mockserver).json()["id"]
    mockserver.cancel(cancelled)
    view = mockserver.task(cancelled)
    assert (view["phase"], view["task"]["status"]) == ("cancelled", "cancelled")  # off the seed contract's enum


def test_assert_requested_shows_the_closest_requests(mockserver) -> None:
    submit(mockserver)
    with pytest.raises(
        AssertionError,
        match=r"expected GET /v1/tasks/\* x1, found 0; closest requests:\n  POST /v1/videos/generations -> 200",
    ):
        mockserver.assert_requested("GET", "/v1/tasks/*", times=1)


def test_a_failure_inside_the_server_fails_the_test_that_caused_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_it(mockserver):
            def broken(*args, **kwargs):
                raise RuntimeError("renderer exploded")
            mockserver.runtime.render.created_json = broken
            response = httpx.post(
                mockserver.url + "/v1/videos/generations",
                json={"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/v.mp4"},
                headers={"Authorization": "Bearer sk-x"},
            )
            assert response.status_code == 500
            assert response.json()["error"]["type"] == "server_error"

        def test_next(mockserver):
            assert mockserver.tasks() == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: renderer exploded*"])


def test_settings_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from mockserver import Settings

        @pytest.fixture(scope="session")
        def mockserver_settings():
            return Settings(clock="manual", contract="current")
        """
    )
    pytester.makepyfile(
        """
        import httpx

        def test_current_contract(mockserver):
            body = {"prompt": "p", "video_url": "https://example.com/v.mp4"}
            headers = {"Authorization": "Bearer " + mockserver.api_key}
            assert httpx.post(mockserver.url + "/v1/videos/generations", json=body, headers=headers).status_code == 200
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
