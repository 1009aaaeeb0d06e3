"""The result URL: a real MP4 of the requested orientation, audio exactly when asked, Range
requests, and expiry 24 scenario hours after completion."""

from __future__ import annotations

import pytest

from tests.conftest import Fake
from tests.mp4 import read


def completed_url(fake: Fake, **request) -> str:
    task_id = fake.create(scenario="fast", **request)
    fake.advance(6)
    task = fake.task(task_id)
    assert task["status"] == "completed"
    return task["results"][0]["url"]


@pytest.mark.parametrize(
    ("aspect_ratio", "audio", "size"),
    [
        ("16:9", True, (1280, 720)),
        ("16:9", False, (1280, 720)),
        ("9:16", True, (720, 1280)),
        ("9:16", False, (720, 1280)),
    ],
)
def test_the_video_matches_the_request(fake: Fake, aspect_ratio: str, audio: bool, size: tuple[int, int]) -> None:
    task_id = fake.create(scenario="fast", aspect_ratio=aspect_ratio, generate_audio=audio)
    fake.advance(6)
    result = fake.task(task_id)["results"][0]
    assert (result["width"], result["height"]) == size
    response = fake.request("GET", result["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    movie = read(response.content)
    assert movie.top_level.index(b"moov") < movie.top_level.index(b"mdat")  # streamable
    assert 6.5 <= movie.duration <= 7.5
    assert max(movie.sizes) == size
    assert ("soun" in movie.handlers) is audio
    assert "vide" in movie.handlers


def test_audio_is_on_by_default(fake: Fake) -> None:
    url = completed_url(fake)
    assert "soun" in read(fake.request("GET", url).content).handlers


def test_range_requests(fake: Fake) -> None:
    url = completed_url(fake)
    whole = fake.request("GET", url).content
    size = len(whole)
    first = fake.request("GET", url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    assert first.content == whole[:100]
    tail = fake.request("GET", url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole[-10:]
    rest = fake.request("GET", url, headers={"Range": f"bytes={size - 5}-"})
    assert rest.content == whole[-5:]
    beyond = fake.request("GET", url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert fake.request("GET", url, headers={"Range": "bytes=0-1,5-6"}).status_code == 200
    assert fake.request("GET", url, headers={"Range": "lines=1-2"}).status_code == 200


def test_head_and_conditional_requests(fake: Fake) -> None:
    url = completed_url(fake)
    head = fake.request("HEAD", url)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 10_000
    etag = head.headers["etag"]
    assert fake.request("GET", url, headers={"If-None-Match": etag}).status_code == 304


def test_no_video_before_completion(fake: Fake) -> None:
    task_id = fake.create()
    response = fake.request("GET", f"/files/{task_id}.mp4")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_the_url_stops_serving_after_24_scenario_hours(fake: Fake) -> None:
    url = completed_url(fake)  # completed at 5 s, now at 6 s
    fake.advance(24 * 3600 - 2)
    assert fake.request("GET", url).status_code == 200
    fake.advance(2)
    expired = fake.request("GET", url)
    assert expired.status_code == 403
    assert "expired" in expired.json()["error"]["message"]


def test_result_urls_use_the_public_url_when_configured(make_fake) -> None:
    fake = make_fake(public_url="https://cdn.example.test/base/")
    task_id = fake.create(scenario="fast")
    fake.advance(10)
    assert fake.task(task_id)["results"][0]["url"] == f"https://cdn.example.test/base/files/{task_id}.mp4"


def test_result_urls_follow_the_host_the_client_used(live: Fake) -> None:
    url = completed_url(live)
    assert url.startswith(str(live.client.base_url).rstrip("/") + "/files/")


def test_if_range_with_another_etag_gets_the_whole_file(fake: Fake) -> None:
    url = completed_url(fake)
    etag = fake.request("HEAD", url).headers["etag"]
    same = fake.request("GET", url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206
    other = fake.request("GET", url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert other.status_code == 200 and len(other.content) > 10


def test_a_scenario_may_give_results_of_its_own(make_fake, tmp_path) -> None:
    (tmp_path / "cdn.yaml").write_text(
        "name: cdn\ndescription: Results on a CDN.\ntimeline:\n  - {at: 0, status: pending}\n"
        "  - {at: 5, status: completed, results: [{url: 'https://cdn.example.com/v.mp4', content_type: video/mp4}]}\n"
    )
    fake = make_fake(scenario_dirs=(tmp_path,))
    task_id = fake.create(scenario="cdn")
    fake.advance(5)
    assert fake.task(task_id)["results"] == [{"url": "https://cdn.example.com/v.mp4", "content_type": "video/mp4"}]
    assert fake.request("GET", f"/files/{task_id}.mp4").status_code == 404  # the fake serves only its own video


def test_results_that_break_the_contract_are_refused_at_start(tmp_path) -> None:
    from mockserver import ScenarioError, Settings, create_app

    (tmp_path / "bad.yaml").write_text(
        "name: bad\ndescription: d\ntimeline:\n  - {at: 0, status: completed, results: [{url: not a url}]}\n"
    )
    with pytest.raises(
        ScenarioError,
        match=r"bad\.yaml:4: timeline\[0\]: would break the contract \(seed\.yaml\): body/results/0/url: \"not a url\" is not a \"uri\"",
    ):
        create_app(Settings(scenario_dirs=(tmp_path,)))
