"""The README's first session, run as written (curl in bash) against `mockserver serve`, with a
manual clock moved between the commands instead of waiting; and every relative link of the
README, ARCHITECTURE.md and docs/ resolving to a file and heading that exist."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.processes import running

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]


def _first_session() -> list[tuple[str, str | None]]:
    """(shell block, the block shown after it or None) of the README's first session."""
    text = README.read_text()
    section = text.split("## A first session with curl", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    session = []
    for index, (kind, body) in enumerate(blocks):
        if kind == "sh" and not body.startswith("make serve"):
            after = blocks[index + 1] if index + 1 < len(blocks) and blocks[index + 1][0] == "json" else None
            session.append((body, after[1] if after else None))
    return session


def _run(block: str, port: int, workdir: Path) -> str:
    state = workdir / "state.sh"
    script = (
        f"set -euo pipefail\n[ -f {state} ] && source {state}\n{block.replace('127.0.0.1:8000', f'127.0.0.1:{port}')}\n"
    )
    script += f"declare -p TASK FAILING > {state} 2>/dev/null || declare -p TASK > {state} 2>/dev/null || true\n"
    result = subprocess.run(
        ["bash", "-c", script], cwd=workdir, check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, f"{block}\n{result.stderr}"
    return result.stdout


def test_the_first_session_runs_as_written(tmp_path: Path) -> None:
    session = _first_session()
    assert len(session) == 5, "submit, poll, download, failing submit, failing poll"
    (submit, shown_created), (poll, shown_task), (download, _), (failing, _), (failed_poll, shown_failed) = session
    with running(["--clock", "manual"]) as (url, _):
        port = int(url.rsplit(":", 1)[1])

        def advance(seconds: float) -> None:
            assert httpx.post(f"{url}/__admin/clock/advance", json={"seconds": seconds}).status_code == 200

        created = json.loads(_run(submit, port, tmp_path))
        assert created["status"] == "pending" and created.keys() == json.loads(shown_created).keys()
        advance(30)
        assert json.loads(_run(poll, port, tmp_path))["status"] == "processing"
        advance(60)
        task = json.loads(_run(poll, port, tmp_path))
        assert task.keys() == json.loads(shown_task).keys() and task["status"] == "completed"
        assert task["results"][0]["height"] == 1280 and task["results"][0]["url"].startswith(url)
        expected = re.search(r"# (200 video/mp4 \d+)", download).group(1)
        assert _run(download, port, tmp_path).strip() == expected
        _run(failing, port, tmp_path)
        advance(60)
        failed, shown = json.loads(_run(failed_poll, port, tmp_path)), json.loads(shown_failed)
        assert failed.keys() == shown.keys()
        assert (failed["status"], failed["progress"], failed["error"]) == (
            shown["status"],
            shown["progress"],
            shown["error"],
        )


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a document."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(anchor)
    return anchors


def test_every_relative_link_resolves() -> None:
    broken = []
    for document in DOCUMENTS:
        text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (document.parent / path).resolve() if path else document
            if not resolved.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved.read_text()):
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_front_pages_stay_short() -> None:
    assert len(README.read_text().splitlines()) <= 250
    assert len((ROOT / "ARCHITECTURE.md").read_text().splitlines()) <= 80
    first_screen = "\n".join(README.read_text().splitlines()[:10])
    assert "make serve" in first_screen and "make test" in first_screen
