"""The Ray executor (``--executor ray``, extra ``audit[ray]``): a plan's generation requests on Ray Data.

The requests not in the cache become a dataset of row indices; ``map_batches`` sends each batch through a pool of
actors that wrap the audit's own async client (`audit.generation.http`: the same retries, whole-request deadlines,
replicas with per-endpoint concurrency and failover, and secret scrubbing), and the rows stream back to this process
as they finish. Each finished generation is scrubbed and committed to the cache on arrival. A request that fails
after its retries fails its row (an ``error`` column), never the dataset: every other row still completes and is
cached, and once the dataset is done the run stops with a `ServerError` naming the failed rows (exit 3) — a re-run
resumes from the cache.

Ray is started for the run (``ray.init(address="local")``: a fresh local instance, never a silent join of a running
cluster) unless ``--ray-address`` names one; it is shut down when the audit ends (`shutdown`). Ray is imported only
here, so the default executor never loads it. Why ``map_batches`` over an actor class rather than
``ray.data.llm``'s HTTP processor: that sends one request at a time per actor, fails the whole dataset on one failed
request and discards the finished rows, and returns 4xx/5xx bodies as ordinary rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from audit.errors import AuditError, InputError, Problem, ServerError
from audit.generation.types import Endpoint, Generation, GenerationRequest, scrub_generation

if TYPE_CHECKING:  # pragma: no cover - typing only
    from audit.generation.cache import GenerationCache

# CPUs one actor asks Ray for: an actor waits on the network, it does not compute.
ACTOR_CPUS = 0.25


@dataclass(frozen=True)
class RayExecutor:
    """Where and how to run generations on Ray. ``address``: a running cluster (``ray://host:10001``, ``auto``) or
    None for a local Ray started for this run; ``actors``: concurrent actors per stage; ``batch_size``: rows per
    call of an actor (its requests are sent concurrently, within the endpoint's per-URL concurrency)."""

    address: str | None = None
    actors: int = 2
    batch_size: int = 8

    def run(
        self,
        endpoint: Endpoint,
        requests: list[GenerationRequest],
        cache: "GenerationCache | None",
        progress: Callable[[int, int], None] | None = None,
        label: str = "",
        seed: int | None = None,
    ) -> list[Generation]:
        return run_generations_ray(self, endpoint, requests, cache, progress, label, seed)


_lock = threading.Lock()
_started: dict[str, Any] = {}


def _ray(executor: RayExecutor) -> Any:
    """The ``ray`` module, connected: to ``executor.address`` when given, else to a local Ray started now (reused by
    the later stages of the same audit)."""
    try:
        import ray
    except ImportError:
        raise InputError(
            [
                Problem(
                    "the Ray executor needs Ray, which is not installed",
                    field="--executor",
                    value="ray",
                    fix="pip install 'audit[ray]' (or 'ray[data]'), or leave out --executor ray",
                )
            ]
        ) from None
    with _lock:
        if not ray.is_initialized():
            ray.init(
                address=executor.address or "local",
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                ignore_reinit_error=True,
            )
            _started["by_audit"] = True
    return ray


def shutdown() -> None:
    """Stop the Ray this audit started (a cluster it joined is only disconnected from)."""
    with _lock:
        if _started.pop("by_audit", None):
            import ray

            ray.shutdown()


class _Generate:
    """One Ray actor: generates the rows of a batch with the audit's async client, each row's failure its own."""

    def __init__(self, endpoint: Endpoint, label: str, seed: int | None, per_base: int) -> None:
        from audit.textsafe import register_env_secrets

        register_env_secrets([endpoint.api_key_env])  # scrub the key from this process's outputs and errors too
        self.endpoint = endpoint
        self.label = label
        self.rng = random.Random(seed)
        self.per_base = per_base

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        idx = [int(i) for i in batch["idx"]]
        requests = [_request_from_json(str(r)) for r in batch["request"]]
        rows = asyncio.run(self._rows(requests))
        # Strings only, "" for none: Ray hands an all-None column back as NaN.
        return {
            "idx": np.asarray(idx, dtype=np.int64),
            "payload": np.asarray([r[0] or "" for r in rows], dtype=object),
            "error": np.asarray([r[1] or "" for r in rows], dtype=object),
        }

    async def _rows(self, requests: list[GenerationRequest]) -> list[tuple[str | None, str | None]]:
        from audit.generation.cache import _encode
        from audit.generation.http import _Run, client_for

        run = _Run(self.endpoint, self.label, self.rng)
        pool, client = client_for(self.endpoint, self.per_base)
        async with client:

            async def one(request: GenerationRequest) -> tuple[str | None, str | None]:
                try:
                    gen = await run.http_one(client, pool, request)
                except AuditError as exc:
                    return None, str(exc)
                except Exception as exc:  # noqa: BLE001 — a row's failure is reported with the row
                    return None, f"{type(exc).__name__}: {exc}"
                return _encode(scrub_generation(gen)), None

            return list(await asyncio.gather(*(one(r) for r in requests)))


def _request_to_json(request: GenerationRequest) -> str:
    return json.dumps({**asdict(request), "stop": list(request.stop)}, ensure_ascii=False)


def _request_from_json(text: str) -> GenerationRequest:
    return GenerationRequest(**json.loads(text))


def run_generations_ray(
    executor: RayExecutor,
    endpoint: Endpoint,
    requests: list[GenerationRequest],
    cache: "GenerationCache | None",
    progress: Callable[[int, int], None] | None,
    label: str,
    seed: int | None,
) -> list[Generation]:
    """Every request's generation (cache first), in request order, generated on Ray Data (module docstring)."""
    from audit.generation.cache import _decode
    from audit.generation.http import Slots

    if endpoint.is_embedded:
        raise InputError(
            [
                Problem(
                    "the Ray executor sends requests to served endpoints; this arm runs the embedded model",
                    field="--executor",
                    value="ray",
                    fix="serve the model (e.g. python -m llama_cpp.server) and name its URL, or leave out --executor",
                )
            ]
        )
    slots = Slots(endpoint, requests, cache, progress, label)
    if not slots.todo:
        return slots.generations()
    order = list(slots.todo)
    firsts = [requests[slots.todo[k][0]] for k in order]
    errors: dict[int, str] = {}
    for j, payload, error in _stream(executor, endpoint, firsts, label, seed):
        if error is not None:
            errors[j] = error
            continue
        slots.fill(order[j], replace(_decode(payload), cached=False))  # scrubbed again here, in this process
    if errors:
        j, first = min(errors.items())
        raise ServerError(
            f"{label + ': ' if label else ''}{len(errors)} of {len(order)} generation(s) failed on the Ray executor "
            f"(the other {len(order) - len(errors)} are cached: re-running resumes with the failed ones); the first, "
            f"item {firsts[j].item_id!r}: {first}"
        )
    return slots.generations()


def _stream(
    executor: RayExecutor, endpoint: Endpoint, requests: list[GenerationRequest], label: str, seed: int | None
) -> Any:
    """(row, payload, error) for every request, as Ray Data finishes them."""
    ray = _ray(executor)
    actors = max(1, int(executor.actors))
    cpus = float(ray.available_resources().get("CPU", 0.0))
    if cpus + 1e-9 < actors * ACTOR_CPUS:
        raise InputError(
            [
                Problem(
                    f"Ray has {cpus:g} free CPU(s); {actors} actor(s) need {actors * ACTOR_CPUS:g}: they would wait "
                    "for resources for ever",
                    field="--ray-address",
                    value=executor.address or "local",
                    fix="free CPUs on the cluster, or use fewer actors",
                )
            ]
        )
    batch = max(1, int(executor.batch_size))
    actors = min(actors, math.ceil(len(requests) / batch))  # no actor without a batch to take
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # the audit's progress display reports the rows
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": we know
    # The endpoint's max_concurrency per URL is shared by the actors (rounded up to a multiple of their number).
    per_base = math.ceil(endpoint.max_concurrency / actors)
    rows = [{"idx": j, "request": _request_to_json(r)} for j, r in enumerate(requests)]
    ds = ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows) / batch))
    ds = ds.map_batches(
        _Generate,
        fn_constructor_kwargs={"endpoint": endpoint, "label": label, "seed": seed, "per_base": per_base},
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch,
        num_cpus=ACTOR_CPUS,
        batch_format="numpy",
    )
    for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for j, payload, error in zip(out["idx"], out["payload"], out["error"]):
            yield int(j), str(payload), (str(error) or None)


__all__ = ["RayExecutor", "run_generations_ray", "shutdown", "ACTOR_CPUS"]
