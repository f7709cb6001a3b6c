"""`bosai` — the operator's command (防災, disaster prevention): thin click groups, one module per group.

Every subcommand parses options, calls the feature that does the work, and prints. Errors an operator can act
on (BosaiError) are printed as one clear message, and the command exits with the error's code
(:class:`streams.kernel.errors.ExitCode`: 0 ok, 1 a check failed or drift, 2 usage, 3 the cluster unavailable,
4 an operational failure, 130 interrupted). The top: may import every feature; nothing imports it
(processes are started through ``python -m streams.<feature>.…``).
"""

from __future__ import annotations

import sys

import click

from streams import __version__
from streams.cli.access import access
from streams.cli.audit import audit
from streams.cli.backup import backup
from streams.cli.bench import bench
from streams.cli.bridge import bridge
from streams.cli.broker import broker, tls
from streams.cli.common import kafka_patience_option, log_level_option, say
from streams.cli.demo import demo
from streams.cli.deploy import k8s, probe
from streams.cli.gateway import gateway
from streams.cli.history import archive, history
from streams.cli.hub import replay, tail, worker
from streams.cli.interfaces import asyncapi
from streams.cli.ops import dashboards, feed, sink
from streams.cli.region import locate, region
from streams.cli.registry import registry
from streams.cli.topics import topics
from streams.cli.watch import amedas, jma
from streams.cli.web import web
from streams.kernel.errors import BosaiError, ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bosai")
@log_level_option
@kafka_patience_option
def cli() -> None:
    """Real-time disaster-data hub for a prefecture and its municipalities.

    Exit codes: 0 ok, 1 a check failed or drift found, 2 usage error, 3 the Kafka cluster could not be reached
    within the patience, 4 an operational failure (the message says what), 130 interrupted.
    """


for command in (
    broker,
    topics,
    tls,
    access,
    region,
    locate,
    worker,
    replay,
    tail,
    jma,
    amedas,
    dashboards,
    feed,
    sink,
    bench,
    demo,
):
    cli.add_command(command)
for command in (bridge, gateway):  # other platforms in and out: FIWARE Orion, municipal sensors over HTTP
    cli.add_command(command)
cli.add_command(web)
for command in (archive, history):  # the platform's memory: the archive, its queries, OGC API - Features
    cli.add_command(command)
cli.add_command(asyncapi)  # the topics described (AsyncAPI 3); the HTTP doors serve their OpenAPI documents
cli.add_command(registry)  # the schema registry standard Avro tooling decodes the client topics with
cli.add_command(audit)  # supply chain: the deployment lock against known vulnerabilities
cli.add_command(backup)  # backup and restore: topics, groups' offsets, packs, access, credentials
for command in (probe, k8s):  # production: health probes, Kubernetes manifests
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        say("aborted")
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BosaiError as exc:
        say(f"bosai: error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(ExitCode.INTERRUPTED)
