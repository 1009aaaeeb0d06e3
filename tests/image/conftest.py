"""The image tests' fixtures. `make image-test` runs this folder (`make test` does not collect it:
`norecursedirs` in pyproject.toml), after building the image it names in IMAGE_UNDER_TEST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.image.containers import image_under_test, leftovers, podman


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """The image's name; when the session ends, none of its containers is left, running or not."""
    name = image_under_test()
    for container in leftovers(every_session=True):  # an earlier run that was killed left these
        podman("rm", "--force", "--time", "0", container, check=False)
    yield name
    for container in leftovers():  # only if a test's own removal failed
        podman("rm", "--force", "--time", "0", container, check=False)
    assert leftovers() == [], "containers left behind"
