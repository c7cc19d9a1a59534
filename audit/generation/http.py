"""Live generation: send prompts to OpenAI-compatible servers (or the embedded llama.cpp model), get texts back.

The runner produces generations and nothing else — no scoring, no statistics (DESIGN.md, data flow). What it
guarantees:

* bounded concurrency per base URL, requests spread over ``url`` + ``replicas`` (least busy first, round robin
  among equals);
* retries with exponential backoff and jitter on 429 (``Retry-After`` honoured when small), 5xx, 408, timeouts,
  connection errors/resets and malformed answers (bad JSON, no ``choices``); a ``ServerError`` naming the URL,
  the item and the fix once retries run out; a server that refuses connections fails within seconds;
* every generation is committed to the cache the moment it arrives, so a killed run loses only what was in
  flight, and a re-run costs nothing for what is cached;
* the API key is read from the environment at request time and never stored, logged, hashed or echoed: it is
  registered with :mod:`audit.textsafe`, which scrubs it from every generation before the generation is cached or
  reported (a server that echoes the key into its completion text) and from every error message;
* ``timeout_s`` is a deadline for the whole request (connect, headers and body), not a per-read timeout: a server
  that trickles a byte a second is cut off; an answer larger than ``MAX_RESPONSE_BYTES`` is refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from audit.errors import AuditError, InputError, Problem, ServerError
from audit.generation.types import (
    ARMS,
    MAX_RESPONSE_BYTES,
    Endpoint,
    Generation,
    GenerationRequest,
    MalformedResponse,
    TruncationError,
    api_key_of,
    build_payload,
    parse_response,
    public_url,
    request_path,
    scrub_generation,
    scrub_secret,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import httpx

    from audit.generation.cache import GenerationCache

_RETRYABLE_STATUS = {408, 409, 425, 429}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------------------------------------------------------
# the async runner


class _Pool:
    """Per-base-URL concurrency slots; picks the least busy base (round robin among equals)."""

    def __init__(self, bases: tuple[str, ...], per_base: int) -> None:
        self.bases = bases
        self.per_base = per_base
        self.total = asyncio.Semaphore(per_base * len(bases))
        self.sems = {b: asyncio.Semaphore(per_base) for b in bases}
        self.in_flight = {b: 0 for b in bases}
        self.penalty_until = {b: 0.0 for b in bases}
        self._rr = 0

    def _pick(self, avoid: str | None) -> str:
        now = time.monotonic()
        n = len(self.bases)
        order = {b: (i - self._rr) % n for i, b in enumerate(self.bases)}
        self._rr = (self._rr + 1) % n
        free = [b for b in self.bases if self.in_flight[b] < self.per_base]
        return min(free, key=lambda b: (self.penalty_until[b] > now, b == avoid and n > 1, self.in_flight[b], order[b]))

    def _healthy_busy(self, base: str) -> bool:
        """``base`` is penalised (it refused a connection lately) while another base is not: wait for that one."""
        now = time.monotonic()
        return self.penalty_until[base] > now and any(self.penalty_until[b] <= now for b in self.bases if b != base)

    async def acquire(self, avoid: str | None) -> str:
        while True:
            await self.total.acquire()
            base = self._pick(avoid)  # no await between pick and increment: atomic on the event loop
            if not self._healthy_busy(base):
                break
            # The only free slot is on an endpoint that refuses connections while a healthy one is busy: a request
            # sent there would burn a retry (and fail the run when its retries ran out), so wait for a healthy slot.
            self.total.release()
            await asyncio.sleep(0.02)
        self.in_flight[base] += 1
        await self.sems[base].acquire()  # never waits: the total bound leaves a free slot on `base`
        return base

    def release(self, base: str) -> None:
        self.in_flight[base] -= 1
        self.sems[base].release()
        self.total.release()

    def penalise(self, base: str, seconds: float) -> None:
        self.penalty_until[base] = max(self.penalty_until[base], time.monotonic() + seconds)


@dataclass
class _Failure:
    message: str
    retryable: bool
    connect: bool = False
    retry_after: float | None = None
    fix: str | None = None
    kind: str = "other"  # connect | timeout | rate_limit | server | malformed | broken | too_large | client | other


def claim_field(label: str) -> str:
    """The claim field of an arm's endpoint settings, from a progress label such as ``baseline/default/16``."""
    arm = label.split("/", 1)[0] if label else ""
    return f"arms.{arm}" if arm in ARMS else ""


def _describe(label: str) -> str:
    parts = label.split("/") if label else []
    if len(parts) >= 3 and parts[0] in ARMS:
        return f"{parts[0]} arm (variant {parts[1]!r}, budget {'/'.join(parts[2:])})"
    return label


class _Run:
    def __init__(self, endpoint: Endpoint, label: str, rng: random.Random, field: str | None = None):
        self.endpoint = endpoint
        self.label = label
        self.field = field if field is not None else claim_field(label)
        self.rng = rng
        self.any_answer = False

    def fld(self, name: str) -> str:
        """A claim field of this arm (``arms.baseline.timeout_s``), or the bare name outside a claim."""
        return f"{self.field}.{name}" if self.field else name

    def fix_text(self, failure: "_Failure | None" = None) -> str:
        """What to do about a failure, by its cause, naming the claim fields that change it."""
        ep = self.endpoint
        f = self.fld
        kind = failure.kind if failure is not None else "other"
        reps = f" and {f('replicas')}" if ep.replicas else ""
        if kind == "connect":
            return (
                f"nothing accepts connections there: start the model server, or correct {f('endpoint')}{reps} "
                "(host and port)"
            )
        if kind == "timeout":
            return (
                f"the server did not finish an answer within {f('timeout_s')} = {ep.timeout_s:g} s (a deadline "
                f"for the whole request): raise timeout_s for long generations, lower {f('max_concurrency')} if "
                "the server is overloaded, or check that it is not stuck"
            )
        if kind == "rate_limit":
            return (
                f"the server is rate-limiting (HTTP 429): lower {f('max_concurrency')} or raise "
                f"{f('max_retries')}; finished generations are cached, so re-running resumes where this stopped"
            )
        if kind == "server":
            return (
                "the server keeps failing: check its log (out of memory? a prompt longer than its context?); "
                f"raise {f('max_retries')} for a flaky server; finished generations are cached, so re-running "
                "resumes where this stopped"
            )
        if kind == "malformed":
            return (
                f"the server answers, but not with OpenAI-style completions: check that {f('endpoint')} is the "
                f"base URL (usually ending in /v1) and that {f('api')} ({ep.api!r}) is what the server serves"
            )
        if kind == "broken":
            return (
                "the connection broke while the answer was on its way: check the server's log and any proxy "
                "in between; finished generations are cached, so re-running resumes where this stopped"
            )
        if kind == "too_large":
            return (
                f"the answer is larger than {MAX_RESPONSE_BYTES >> 20} MiB: check the server, and the budget "
                "(max_tokens) it was asked for"
            )
        return f"check {f('endpoint')}, {f('model')} and {f('api')} against what the server serves"

    def error(
        self, request: GenerationRequest, where: str, attempts: int, failure: "_Failure", key: str | None
    ) -> ServerError:
        head = f"{_describe(self.label)}: " if self.label else ""
        msg = (
            f"{head}generation for item {request.item_id!r} from {where} failed after {attempts} attempt(s); "
            f"last error: {failure.message}\n    fix: {failure.fix or self.fix_text(failure)}"
        )
        return ServerError(scrub_secret(msg, key))

    def delay(self, attempt: int) -> float:
        ep = self.endpoint
        d = min(ep.backoff_max_s, ep.backoff_base_s * (2**attempt))
        return d * (1.0 + 0.25 * self.rng.random())

    def retry_wait(self, failure: "_Failure", attempt: int) -> float:
        """Seconds to wait before retrying after ``failure``: the server's Retry-After, a quick retry, or backoff."""
        ep = self.endpoint
        if failure.retry_after is not None:
            return min(failure.retry_after, ep.max_retry_after_s)
        if failure.connect and not self.any_answer:
            return min(ep.backoff_base_s, 0.25) * (1 + attempt)
        return self.delay(attempt)

    # -- HTTP --------------------------------------------------------------------------------------------------
    async def http_one(self, client: "httpx.AsyncClient", pool: _Pool, request: GenerationRequest) -> Generation:
        import httpx

        ep = self.endpoint
        payload = build_payload(ep, request)
        path = request_path(ep)
        timeout = httpx.Timeout(ep.timeout_s, connect=min(ep.timeout_s, 10.0))
        attempt = 0
        avoid: str | None = None
        while True:
            key = api_key_of(ep)  # read at request time: a rotated key is picked up mid-run
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            base = await pool.acquire(avoid)
            where = public_url(base) + path
            failure: _Failure | None = None
            t0 = time.perf_counter()
            try:
                # The whole request — connect, headers, body — within timeout_s: httpx's timeout bounds each read,
                # so a server sending a byte a second would otherwise never time out.
                resp, body = await asyncio.wait_for(
                    _post_bounded(client, base + path, payload, headers, timeout), timeout=ep.timeout_s
                )
            except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
                failure = _Failure(
                    f"no complete answer within timeout_s = {ep.timeout_s:g} s ({type(exc).__name__})",
                    True,
                    kind="timeout",
                )
            except httpx.ConnectError as exc:
                failure = _Failure(
                    f"cannot connect ({str(exc) or type(exc).__name__})", True, connect=True, kind="connect"
                )
                pool.penalise(base, 5.0)
            except _TooLarge:
                failure = _Failure(f"the answer is larger than {MAX_RESPONSE_BYTES >> 20} MiB", False, kind="too_large")
            except httpx.TransportError as exc:
                failure = _Failure(
                    f"{type(exc).__name__}: {str(exc) or 'connection broken or reset'}", True, kind="broken"
                )
            except httpx.DecodingError as exc:  # e.g. "Content-Encoding: gzip" over a body that is not gzip
                failure = _Failure(
                    f"the answer's body cannot be decoded as its Content-Encoding says "
                    f"({str(exc)[:200] or type(exc).__name__})",
                    True,
                    kind="malformed",
                )
            except (httpx.InvalidURL, ValueError) as exc:
                failure = _Failure(
                    f"invalid URL {public_url(base + path)!r}: {exc}",
                    False,
                    kind="other",
                    fix=f"correct {self.fld('endpoint')} (e.g. http://127.0.0.1:8000/v1)",
                )
            except httpx.HTTPError as exc:  # any other protocol fault of the server (redirect loops, stream errors)
                failure = _Failure(f"{type(exc).__name__}: {str(exc)[:200] or 'protocol error'}", True, kind="broken")
            finally:
                latency = time.perf_counter() - t0
                pool.release(base)
            if failure is None:
                self.any_answer = True
                outcome = self._classify(resp, body, latency)
                if isinstance(outcome, Generation):
                    return replace(outcome, served_by=public_url(base))
                failure = outcome

            # Fail fast when nothing has ever answered and the connection is refused: likely a wrong URL or a
            # server that is not up — a couple of quick retries, not minutes of backoff.
            limit = ep.max_retries
            if failure.connect and not self.any_answer:
                limit = min(limit, 2)
            if not failure.retryable or attempt >= limit:
                raise self.error(request, where, attempt + 1, failure, key)
            wait = self.retry_wait(failure, attempt)
            avoid = base
            attempt += 1
            await asyncio.sleep(wait)

    def _classify(self, resp: "httpx.Response", body: bytes, latency: float) -> "Generation | _Failure":
        import json

        status = resp.status_code
        snippet = body[:300].decode("utf-8", errors="replace").strip()
        f = self.fld
        if status == 200:
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                return _Failure(f"HTTP 200 with malformed JSON: {snippet[:120]!r}", True, kind="malformed")
            try:
                return parse_response(data, self.endpoint.api, latency)
            except MalformedResponse as exc:
                return _Failure(f"HTTP 200 but {exc}", True, kind="malformed")
        if status == 429 or status in _RETRYABLE_STATUS or status >= 500:
            return _Failure(
                f"HTTP {status}: {snippet!r}",
                True,
                retry_after=_retry_after(resp.headers.get("retry-after")),
                kind="rate_limit" if status == 429 else "server",
            )
        if status in (401, 403):
            fix = (
                f"check the API key in ${self.endpoint.api_key_env} ({f('api_key_env')})"
                if self.endpoint.api_key_env
                else f"the server wants an API key: set {f('api_key_env')} to the name of a variable holding it"
            )
        elif status == 404:
            fix = (
                f"check {f('endpoint')} (OpenAI-compatible servers usually serve under /v1), {f('api')} "
                f"({self.endpoint.api!r}) and {f('model')} ({self.endpoint.model!r})"
            )
        else:
            fix = (
                f"the server rejected the request: check {f('model')} ({self.endpoint.model!r}), {f('api')}, "
                "and the budget (max_tokens) against the model's context length"
            )
        return _Failure(f"HTTP {status}: {snippet!r}", False, fix=fix, kind="client")

    # -- embedded ----------------------------------------------------------------------------------------------
    async def embedded_one(self, request: GenerationRequest) -> Generation:
        from audit.generation import embedded

        try:
            return replace(await asyncio.to_thread(embedded.generate, self.endpoint, request), served_by="embedded")
        except AuditError:
            raise
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError for e.g. a prompt beyond n_ctx
            head = f"{self.label}: " if self.label else ""
            raise ServerError(
                f"{head}embedded generation for item {request.item_id!r} failed: {type(exc).__name__}: {exc}\n"
                "    fix: check the prompt fits the embedded model's context (2048 tokens) and model_path"
            ) from exc


class _TooLarge(Exception):
    """The server's answer passed MAX_RESPONSE_BYTES."""


async def _post_bounded(client: "httpx.AsyncClient", url: str, payload: dict, headers: dict, timeout) -> tuple:
    """POST and read the answer, refusing one larger than MAX_RESPONSE_BYTES (read inside the caller's slot and
    deadline: a reset mid-body raises here)."""
    async with client.stream("POST", url, json=payload, headers=headers, timeout=timeout) as resp:
        chunks, size = [], 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise _TooLarge()
            chunks.append(chunk)
    return resp, b"".join(chunks)


def _validate(endpoint: Endpoint, requests: list[GenerationRequest], label: str) -> None:
    field = claim_field(label)
    where = f"{field}.endpoint" if field else "endpoint"
    problems = endpoint.problems(where)
    bad_api = [r.item_id for r in requests if r.system_prompt is not None and endpoint.api != "chat"]
    if bad_api:
        problems.append(
            Problem(
                "system_prompt is only sent with api: chat; with completions it would be silently dropped",
                field=f"{where}.api",
                value=bad_api[:5],
                fix="use api: chat, or fold the system prompt into the prompt",
            )
        )
    bad_tokens = [r.item_id for r in requests if r.max_tokens < 1]
    if bad_tokens:
        problems.append(Problem("max_tokens must be >= 1", field="max_tokens", value=bad_tokens[:5]))
    if problems:
        raise InputError(problems)
    api_key_of(endpoint)  # a missing key variable is an input error before any request goes out


class Slots:
    """The generations of ``requests`` in request order, filled from the cache first, then as each missing one
    arrives (`fill`). ``todo``: the cache keys still to generate, with the requests' indices under each (identical
    requests, same key, are generated once); ``progress(done, total)`` is told at the start and after each fill."""

    def __init__(
        self,
        endpoint: Endpoint,
        requests: list[GenerationRequest],
        cache: "GenerationCache | None",
        progress: Callable[[int, int], None] | None,
        label: str,
    ) -> None:
        from audit.generation.cache import key_for

        _validate(endpoint, requests, label)
        self.endpoint, self.cache, self.progress = endpoint, cache, progress
        self.results: list[Generation | None] = []
        self.todo: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            k = key_for(endpoint, r)
            self.results.append(cache.get(k) if cache is not None else None)
            if self.results[-1] is None:
                self.todo.setdefault(k, []).append(i)
        self.total = len(requests)
        self.done = self.total - sum(len(v) for v in self.todo.values())
        self._tell()

    def _tell(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    def fill(self, key: str, gen: Generation) -> None:
        """``gen`` for every request under ``key``: scrubbed of secrets, then committed to the cache before anything
        else is awaited or returned, so a killed run loses only what was in flight."""
        gen = scrub_generation(gen)
        if self.cache is not None:
            self.cache.put(key, gen, model=self.endpoint.model, url=self.endpoint.identity()["url"])
        for i in self.todo[key]:
            self.results[i] = gen
        self.done += len(self.todo[key])
        self._tell()

    def generations(self) -> list[Generation]:
        """Every slot's generation, once every key in ``todo`` is filled."""
        return self.results  # type: ignore[return-value]  # every slot filled (cache or fill)


def client_for(endpoint: Endpoint, per_base: int) -> tuple[_Pool, "httpx.AsyncClient"]:
    """The concurrency slots (``per_base`` per base URL) and an HTTP client with as many connections."""
    import httpx

    bases = endpoint.base_urls()
    n_conn = per_base * len(bases)
    limits = httpx.Limits(max_connections=n_conn, max_keepalive_connections=n_conn)
    return _Pool(bases, per_base), httpx.AsyncClient(limits=limits, timeout=endpoint.timeout_s)


async def arun_generations(
    endpoint: Endpoint,
    requests: list[GenerationRequest],
    cache: "GenerationCache | None",
    progress: Callable[[int, int], None] | None = None,
    label: str = "",
    *,
    seed: int | None = None,
) -> list[Generation]:
    """Async implementation of ``run_generations`` (use it directly inside a running event loop)."""
    slots = Slots(endpoint, requests, cache, progress, label)
    if not slots.todo:
        return slots.generations()
    run = _Run(endpoint, label, random.Random(seed))
    if endpoint.is_embedded:
        for key, idx in slots.todo.items():  # one model, few cores: strictly serial
            slots.fill(key, await run.embedded_one(requests[idx[0]]))
        return slots.generations()

    pool, client = client_for(endpoint, endpoint.max_concurrency)
    async with client:

        async def one(key: str, idx: list[int]) -> None:
            slots.fill(key, await run.http_one(client, pool, requests[idx[0]]))

        tasks = [asyncio.create_task(one(k, idx)) for k, idx in slots.todo.items()]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            pending = [t for t in tasks if not t.done()]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Every finished task's exception is retrieved (asyncio would otherwise print a traceback for each at exit);
        # the first failure in request order is raised.
        errors = [t.exception() for t in tasks if t.done() and not t.cancelled()]
        for exc in errors:
            if exc is not None:
                raise exc
    return slots.generations()


def run_generations(
    endpoint: Endpoint,
    requests: list[GenerationRequest],
    cache: "GenerationCache | None",
    progress: Callable[[int, int], None] | None = None,
    label: str = "",
    *,
    seed: int | None = None,
    executor: Any = None,
) -> list[Generation]:
    """Generate every request (cache first), in request order. ``seed`` only seeds the retry jitter.

    Raises ``ServerError`` (exit 3) when a server keeps failing, ``InputError`` (exit 2) for a bad endpoint or a
    missing API-key variable. Safe to call from code that already runs an event loop (it then uses a thread).
    ``executor``: another executor with a ``run`` of the same signature (`audit.generation.ray_executor`); None, the
    in-process asyncio client.
    """
    if executor is not None:
        return executor.run(endpoint, requests, cache, progress, label, seed)
    coro_args = (endpoint, requests, cache, progress, label)
    return _run_sync(lambda: arun_generations(*coro_args, seed=seed))


def _run_sync(make_coro: Callable[[], Any]) -> Any:
    """Run a coroutine to completion from sync code, in a thread when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="audit-runner")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# ---------------------------------------------------------------------------------------------------------------
# tokenizer access and the budget sweep


def _root(endpoint: Endpoint) -> str:
    base = endpoint.url.rstrip("/")
    return base[:-3] if base.endswith("/v1") else base


def _post_json(endpoint: Endpoint, path: str, body: dict) -> Any:
    import httpx

    key = api_key_of(endpoint)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limit = min(endpoint.timeout_s, 30.0)

    async def post() -> tuple:
        async with httpx.AsyncClient() as client:
            return await asyncio.wait_for(_post_bounded(client, _root(endpoint) + path, body, headers, limit), limit)

    try:  # a total deadline, as for generations: a tokenizer route that trickles must not stall the sweep
        resp, content = _run_sync(post)
    except (httpx.HTTPError, httpx.InvalidURL, asyncio.TimeoutError, _TooLarge, ValueError):
        return None
    if resp.status_code != 200:
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _server_tokenize(endpoint: Endpoint, text: str) -> list[int] | None:
    # llama-cpp-python: /extras/tokenize {"input"}; llama.cpp server: /tokenize {"content"};
    # vLLM: /tokenize {"model", "prompt"}. The first that answers with a list of ints wins.
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("/extras/tokenize", {"input": text, "model": endpoint.model}),
        (
            "/tokenize",
            {
                "content": text,
                "add_special": False,
                "model": endpoint.model,
                "prompt": text,
                "add_special_tokens": False,
            },
        ),
    ]
    for path, body in attempts:
        data = _post_json(endpoint, path, body)
        toks = data.get("tokens") if isinstance(data, dict) else None
        if isinstance(toks, list) and all(isinstance(t, int) for t in toks):
            return toks
    return None


def tokenize(endpoint: Endpoint, text: str) -> list[int] | None:
    """Token ids of ``text`` under the endpoint's tokenizer, without BOS/special prefix; None if unavailable.

    Served models: llama-cpp-python's ``POST /extras/tokenize`` or llama.cpp/vLLM's ``POST /tokenize``.
    Embedded: the loaded GGUF's tokenizer.
    """
    if endpoint.is_embedded:
        from audit.generation import embedded

        return embedded.tokenize(endpoint, text)
    toks = _server_tokenize(endpoint, text)
    if toks is None:
        return None
    # some servers always add BOS: whatever they add to the empty string is a prefix to strip
    empty = _server_tokenize(endpoint, "") or []
    if empty and toks[: len(empty)] == empty:
        toks = toks[len(empty) :]
    return toks


def detokenize(endpoint: Endpoint, ids: list[int]) -> str | None:
    """Text of token ids under the endpoint's tokenizer; None if the server offers no detokenizer."""
    if endpoint.is_embedded:
        from audit.generation import embedded

        return embedded.detokenize(endpoint, ids)
    for path, body in [
        ("/extras/detokenize", {"tokens": ids, "model": endpoint.model}),
        ("/detokenize", {"tokens": ids, "model": endpoint.model}),
    ]:
        data = _post_json(endpoint, path, body)
        if isinstance(data, dict):
            for name in ("text", "content", "prompt"):
                if isinstance(data.get(name), str):
                    return data[name]
    return None


def _cut_by_token_strings(gen: Generation, budget: int, n_full: int | None) -> Generation | None:
    """The cut from the recorded token strings, when they were recorded and join up to the text; else None."""
    toks = gen.tokens
    if toks is not None and len(toks) > budget and (n_full is None or len(toks) == n_full):
        joined = "".join(toks)
        if joined == gen.text or (gen.finish_reason == "stop" and joined.startswith(gen.text)):
            lps = gen.token_logprobs[:budget] if gen.token_logprobs is not None else None
            return replace(
                gen,
                text="".join(toks[:budget]),
                finish_reason="length",
                completion_tokens=budget,
                tokens=tuple(toks[:budget]),
                token_logprobs=lps,
                truncated_from=n_full if n_full is not None else len(toks),
            )
    return None


def _cut_within_text(
    gen: Generation,
    budget: int,
    endpoint: Endpoint,
    request: GenerationRequest | None,
    ids: list[int],
    n_full: int | None,
) -> Generation:
    """The cut when the re-tokenized text fits in ``budget``: the generation itself, or one stopped by length."""
    stopped = gen.finish_reason == "stop"
    if n_full is not None and budget < n_full:
        # The text is exactly ``budget`` tokens and the stop sequence followed as whole tokens: the shorter run
        # generated the same text and stopped by length.
        if (
            stopped
            and len(ids) == budget
            and request is not None
            and any(
                (t := tokenize(endpoint, gen.text + stop)) is not None and len(t) == n_full for stop in request.stop
            )
        ):
            return replace(gen, finish_reason="length", completion_tokens=budget, truncated_from=n_full)
        # Otherwise the budget ends inside the stop sequence: the shorter run would stop by length, perhaps
        # with part of the stop sequence in its text. Not derivable exactly.
        raise TruncationError(
            f"cannot cut a generation to {budget} tokens: the budget ends inside its stop sequence\n"
            "    fix: run this budget separately"
        )
    return gen if n_full is not None else replace(gen, completion_tokens=len(ids))


def truncate_to_tokens(
    gen: Generation, budget: int, endpoint: Endpoint, *, request: GenerationRequest | None = None
) -> Generation:
    """The generation this request would have produced with ``max_tokens=budget``, cut from a longer one.

    Valid for greedy decoding only (pass ``request`` to have that checked): each greedy token depends only on
    the tokens before it, so the run at a smaller budget is a prefix of the run at a larger one (DESIGN.md:
    a budget sweep costs one run at the largest budget). Stop sequences are matched on the text as it grows,
    so a generation that ran past ``budget`` tokens contained no stop sequence within its first ``budget``
    tokens: the cut prefix cannot contain one either, and ``finish_reason`` of the cut is ``"length"``.

    Uses the generated token strings when logprobs were recorded (and they join up to the text); otherwise
    tokenizes the text with the endpoint's tokenizer (server ``/extras/tokenize``-style routes, or the embedded
    GGUF) and checks the round trip reproduces the text and the token count. Raises ``TruncationError`` when
    neither gives an exact answer — then run at that budget instead. ``latency_s`` stays that of the longer
    run it was cut from (``truncated_from`` says how long that was).
    """
    if budget < 1:
        raise ValueError("budget must be >= 1")
    if request is not None and not request.greedy:
        raise InputError(
            [
                Problem(
                    "a budget sweep can only be cut from one run when decoding is greedy",
                    field="temperature",
                    value=request.temperature,
                    fix="set temperature: 0, or run each budget separately",
                )
            ]
        )
    if gen.completion_tokens is not None and gen.completion_tokens <= budget:
        return gen
    n_full = gen.completion_tokens

    by_strings = _cut_by_token_strings(gen, budget, n_full)
    if by_strings is not None:
        return by_strings

    ids = tokenize(endpoint, gen.text)
    if ids is None:
        raise TruncationError(
            f"cannot cut a generation to {budget} tokens: no token strings were recorded (logprobs not asked) "
            f"and {public_url(endpoint.url)} offers no tokenizer route\n"
            "    fix: request logprobs, or run this budget separately"
        )
    # A generation that ended on a stop sequence counts the stop sequence's tokens, which its text omits.
    stopped = gen.finish_reason == "stop"
    if n_full is not None and (len(ids) > n_full if stopped else len(ids) != n_full):
        raise TruncationError(
            f"cannot cut a generation to {budget} tokens exactly: re-tokenizing its text gives {len(ids)} tokens, "
            f"the server generated {n_full}\n    fix: request logprobs, or run this budget separately"
        )
    if len(ids) <= budget:
        return _cut_within_text(gen, budget, endpoint, request, ids, n_full)
    full = detokenize(endpoint, ids)
    cut = detokenize(endpoint, ids[:budget])
    # some detokenizers drop leading whitespace at position 0 (SentencePiece); anything else is a mismatch
    lost = gen.text[: len(gen.text) - len(full)] if full is not None and gen.text.endswith(full) else None
    if cut is None or lost is None or (lost and not lost.isspace()):
        raise TruncationError(
            f"cannot cut a generation to {budget} tokens exactly: the tokenizer does not round-trip its text\n"
            "    fix: request logprobs, or run this budget separately"
        )
    return replace(
        gen,
        text=lost + cut,
        finish_reason="length",
        completion_tokens=budget,
        tokens=None,
        token_logprobs=None,
        truncated_from=len(ids),
    )
