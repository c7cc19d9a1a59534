"""``audit cache``: inspect or clear the generation cache of live runs (added to the command group in
:mod:`audit.cli`)."""

from __future__ import annotations

from pathlib import Path

import click

from audit.cli_output import _safe


@click.group()
def cache() -> None:
    """Inspect or clear the generation cache of live runs."""


_CACHE_OPTION = click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The cache file (default: the one `audit verify` uses).",
)


@cache.command("info")
@_CACHE_OPTION
def cache_info(cache_path: Path | None) -> None:
    """Where the cache is, how many generations it holds, for which models."""
    from audit.generation.cache import GenerationCache

    info = GenerationCache(cache_path).info()
    for k, v in info.items():
        click.echo(f"{k}: {_safe(v)}")


@cache.command("clear")
@_CACHE_OPTION
@click.option("--yes", is_flag=True, help="Confirm: delete every cached generation (required).")
def cache_clear(cache_path: Path | None, yes: bool) -> None:
    """Delete every cached generation (pass --yes to confirm; without it nothing is deleted, exit 2)."""
    from audit.generation.cache import GenerationCache, default_cache_path

    if not yes:
        where = cache_path or default_cache_path()
        raise click.UsageError(
            f"`audit cache clear` deletes every cached generation in {_safe(where)}: pass --yes "
            "to confirm (nothing was deleted)"
        )

    n = GenerationCache(cache_path).clear()
    click.echo(f"removed {n} cached generation(s)")
