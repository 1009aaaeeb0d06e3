"""Containers of the image under test, as an operator runs them: podman configured by
tools/container/podman.sh (the store `make image-test` built the image in), the host's network with
the fake on a free loopback port (`MOCKSERVER_HOST=127.0.0.1`: the image's default is 0.0.0.0),
settings and secrets in an env file (never on podman's command line). Every container carries this
session's label and is removed whatever happens (`running` and the session's sweep in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import httpx

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
PODMAN = ROOT / "tools" / "container" / "podman.sh"
SESSION = uuid.uuid4().hex[:12]
LABEL = f"veo-mockserver.image-test={SESSION}"


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr}"
    return result


def image_under_test() -> str:
    image = os.environ.get("IMAGE_UNDER_TEST", "")
    assert image, "IMAGE_UNDER_TEST is not set: `make image-test` builds the image and runs these tests"
    assert podman("image", "exists", image, check=False).returncode == 0, f"{image} is not built: `make image-test`"
    return image


def leftovers(every_session: bool = False) -> list[str]:
    """This session's containers that still exist (or any image test's, of any session)."""
    label = LABEL.partition("=")[0] if every_session else LABEL
    return podman("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()


class Container:
    """One container of the image: `mockserver serve` with `args`, `env` in its env file, `mounts`
    ((host path, container path), read-only)."""

    def __init__(
        self,
        image: str,
        folder: Path,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        mounts: Sequence[tuple[Path, str]] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = f"veo-image-test-{SESSION}-{uuid.uuid4().hex[:8]}"
        settings = {"MOCKSERVER_HOST": "127.0.0.1", "MOCKSERVER_PORT": str(self.port), **(env or {})}
        self.settings = settings
        self.env_file = folder / f"{self.name}.env"
        volumes = [f"--volume={host}:{inside}:ro" for host, inside in mounts]
        self.command = ["run", "--detach", "--name", self.name, "--label", LABEL, "--network", "host"]
        self.command += ["--env-file", str(self.env_file), *volumes, image, *args]

    def start(self) -> Self:
        descriptor = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.writelines(f"{name}={value}\n" for name, value in self.settings.items())
        try:
            podman(*self.command)
        finally:
            self.env_file.unlink()  # podman read it into the container's configuration
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/__admin/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            state = self.inspect("{{.State.Status}}")
            assert state == "running", f"the container is {state}:\n{self.logs()}"
            assert time.monotonic() < deadline, f"no answer from {self.url} within 60 s:\n{self.logs()}"
            time.sleep(0.1)

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        """What the fake printed (standard output and error)."""
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *argv: str, user: str | None = None) -> str:
        as_user = ["--user", user] if user else []
        return podman("exec", *as_user, self.name, *argv).stdout

    def stop(self) -> int:
        """`podman stop`: SIGTERM, and SIGKILL (exit code 137) if it is still running 10 s later.
        The container's exit code."""
        podman("stop", "--time", "10", self.name, timeout=60)
        return int(self.inspect("{{.State.ExitCode}}"))

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False, timeout=60)


@contextmanager
def running(
    image: str,
    folder: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    mounts: Sequence[tuple[Path, str]] = (),
) -> Iterator[Container]:
    """A started container, removed afterwards (even when the start or the test fails)."""
    container = Container(image, folder, args, env, mounts)
    try:
        yield container.start()
    finally:
        container.remove()
