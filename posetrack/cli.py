"""The command-line interface: parse options, build configs, call one library function.

Library code raises PosetrackError for problems a user can fix; here it becomes one line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import logging

import click

from .errors import PosetrackError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PosetrackError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more detail (debug level).")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.version_option(package_name="posetrack")
def main(verbose: bool, quiet: bool) -> None:
    """Multi-person pose tracking in video, and PoseTrack evaluation."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
