"""The live-run options of ``audit verify`` (cache, sequential stopping, executor) and what they set up.

Kept out of :mod:`audit.cli` so the command module stays a list of commands; `live_options` adds the options to a
click command and hands them over as one `LiveOptions`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from audit.cli_progress import _line_progress, _progress, _stderr_is_terminal


@dataclass(frozen=True)
class LiveOptions:
    no_cache: bool = False
    cache_path: Path | None = None
    sequential: bool = False
    n_max: int | None = None
    executor: str = "asyncio"
    ray_address: str | None = None
    ray_actors: int = 2

    def executor_object(self) -> Any:
        """The executor `audit.verify.verify` takes: None for the in-process asyncio client."""
        if self.executor != "ray":
            if self.ray_address is not None:
                raise click.UsageError("--ray-address needs --executor ray")
            return None
        from audit.generation.ray_executor import RayExecutor

        return RayExecutor(address=self.ray_address, actors=self.ray_actors)


_OPTIONS = [
    click.option("--no-cache", is_flag=True, help="Live mode: neither read nor write the generation cache."),
    click.option(
        "--cache",
        "cache_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Live mode: the generation cache file (default: $AUDIT_CACHE_DIR/generations.sqlite or "
        "~/.cache/audit/generations.sqlite).",
    ),
    click.option(
        "--sequential",
        is_flag=True,
        help="Live mode: generate in batches (seeded draw order) and stop once the verdict is settled by "
        "anytime-valid tests (options.sequential). Replay: say after how many items a live re-run would have stopped.",
    ),
    click.option(
        "--n-max", "n_max", type=click.IntRange(1), default=None, help="With --sequential: the most items to generate."
    ),
    click.option(
        "--executor",
        type=click.Choice(["asyncio", "ray"]),
        default="asyncio",
        show_default=True,
        help="Live mode: where generation requests run — the in-process asyncio client, or Ray Data "
        "(pip install 'audit[ray]'; a local Ray is started for the run unless --ray-address names a cluster).",
    ),
    click.option(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="With --executor ray: a running Ray cluster to use (e.g. ray://head:10001 or auto); never joined "
        "unless named here.",
    ),
    click.option(
        "--ray-actors",
        type=click.IntRange(1, 1024),
        default=2,
        show_default=True,
        help="With --executor ray: actors sending requests at once (each within the endpoint's max_concurrency).",
    ),
]


def live_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the live-run options to a click command; the command receives them as ``live: LiveOptions``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        names = ("no_cache", "cache_path", "sequential", "n_max", "executor", "ray_address", "ray_actors")
        live = LiveOptions(**{n: kwargs.pop(n) for n in names})
        return f(*args, live=live, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def live_run_aids(claim: Any, live: LiveOptions, as_json: bool) -> tuple[Any, Any]:
    """The generation cache and the progress display of a live run (None, None for a replay)."""
    cache = None
    if claim.live and not live.no_cache:
        from audit.generation.cache import GenerationCache

        cache = GenerationCache(live.cache_path)
    progress = None
    if claim.live and not as_json:
        # A terminal gets a bar per stage; a CI log (stderr not a terminal) lines with counts, rate and ETA.
        progress = _progress if _stderr_is_terminal() else _line_progress()
    return cache, progress


def end_live_run() -> None:
    """Stop a Ray the run started (the default executor has nothing to stop)."""
    import sys

    mod = sys.modules.get("audit.generation.ray_executor")
    if mod is not None:
        mod.shutdown()
