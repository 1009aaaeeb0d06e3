"""The `mockserver` command: serve the fake, check a deployment, record one, fuzz a client, list
and validate scenarios. One module per command; what they share (options, defaults, `fail`) is in
`options`. A command imports what only it needs when it runs, so `mockserver --help` stays light.
"""

from __future__ import annotations

import click

from mockserver.cli import check, fuzz_client, record, scenarios, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="veo-mockserver", prog_name="mockserver")
def main() -> None:
    """An offline fake of the veo-3.1-extend video generation API."""


main.add_command(serve.serve)
main.add_command(check.check)
main.add_command(record.record)
main.add_command(fuzz_client.fuzz_client)
main.add_command(scenarios.scenarios)
