"""`bosai asyncapi`: the AsyncAPI 3 document of every topic (asyncapi.yaml), generated; --check for drift."""

from __future__ import annotations

import click

from streams.kernel.errors import CheckFailed


@click.command()
@click.option("--check", is_flag=True, help="Exit 1 if asyncapi.yaml differs from what is generated.")
def asyncapi(check: bool) -> None:
    """Generate asyncapi.yaml from topics/catalog.yaml and avro/ (every topic, its Kafka bindings and schema)."""
    from streams.ops.asyncapi_file import asyncapi_path, render

    path, text = asyncapi_path(), render()
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if check:
        if current != text:
            raise CheckFailed(f"{path} is out of date: run `bosai asyncapi`")
        click.echo(f"{path} is up to date")
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}" + (" (unchanged)" if current == text else ""))
