"""Generation value types: an endpoint, a request, a generation; the request payload and the response parser.

Shared by the HTTP runner (:mod:`audit.generation.http`), the embedded model (:mod:`audit.generation.embedded`) and
the cache (:mod:`audit.generation.cache`); it imports none of them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from audit.errors import InputError, Problem, ServerError

EMBEDDED = "embedded"
_FINISH_ALIASES = {
    "stop": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_length": "length",
}
MAX_RESPONSE_BYTES = 64 << 20
"""Largest answer accepted from a server (a completion of a million tokens is a few MiB)."""
ARMS = ("baseline", "treatment")


# ---------------------------------------------------------------------------------------------------------------
# value types


@dataclass(frozen=True)
class Endpoint:
    """Where one arm's generations come from.

    ``url`` is ``"embedded"`` (llama.cpp in-process, see ``audit.generation.embedded``) or an OpenAI-compatible base URL
    such as ``http://127.0.0.1:8000/v1``; ``replicas`` are more base URLs serving the same model.
    ``api_key_env`` names an environment variable holding the key; the key itself never enters this object.
    ``backoff_base_s``/``backoff_max_s`` shape the retry delays (``base * 2**attempt``, jittered, capped);
    ``max_retry_after_s`` caps how long a server's ``Retry-After`` is obeyed.
    ``model_path``, ``n_threads`` and ``n_batch`` apply to the embedded model only; ``n_batch=1`` evaluates the
    prompt one token at a time, which makes llama.cpp's output independent of how a prompt is batched (at the
    cost of slower prompt processing) — see ``audit.generation.embedded``.
    """

    url: str
    model: str
    api: Literal["completions", "chat"] = "completions"
    replicas: tuple[str, ...] = ()
    api_key_env: str | None = None
    max_concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 4
    model_path: str | None = None
    n_threads: int | None = None
    n_batch: int | None = None
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.replicas, tuple):
            object.__setattr__(self, "replicas", tuple(self.replicas))

    @property
    def is_embedded(self) -> bool:
        return self.url == EMBEDDED

    def base_urls(self) -> tuple[str, ...]:
        """``url`` then the replicas, trailing slashes removed, duplicates dropped (order kept)."""
        if self.is_embedded:
            return (EMBEDDED,)
        seen: dict[str, None] = {}
        for u in (self.url, *self.replicas):
            seen.setdefault(u.rstrip("/"), None)
        return tuple(seen)

    def identity(self) -> dict:
        """What decides the model behind this endpoint, for cache keys.

        ``url`` (credentials stripped) or ``"embedded:sha256:<hex>"`` of the GGUF file, ``model`` and ``api``.
        Not the API key, and not the replicas: they serve the same model by definition, so adding, removing or
        reordering them must not invalidate the cache.
        """
        if self.is_embedded:
            from audit.generation.model_file import model_identity

            url = EMBEDDED + ":" + model_identity(self.model_path)
            if self.n_batch is not None:  # a different batching schedule can change greedy output
                url += f";n_batch={self.n_batch}"
        else:
            url = public_url(self.url.rstrip("/"))
        return {"url": url, "model": self.model, "api": self.api}

    def problems(self, where: str = "endpoint") -> list[Problem]:
        """Everything wrong with this endpoint, all at once (empty when usable)."""
        out: list[Problem] = []
        if self.api not in ("completions", "chat"):
            out.append(Problem("api must be 'completions' or 'chat'", field=f"{where}.api", value=self.api))
        if not self.model:
            out.append(
                Problem(
                    "model name is empty",
                    field=f"{where}.model",
                    fix="set the model name the server serves (GET {url}/models lists them)",
                )
            )
        if self.max_concurrency < 1:
            out.append(
                Problem("max_concurrency must be >= 1", field=f"{where}.max_concurrency", value=self.max_concurrency)
            )
        if self.max_retries < 0:
            out.append(Problem("max_retries must be >= 0", field=f"{where}.max_retries", value=self.max_retries))
        if not self.timeout_s > 0:
            out.append(Problem("timeout_s must be > 0", field=f"{where}.timeout_s", value=self.timeout_s))
        if self.is_embedded:
            if self.replicas:
                out.append(
                    Problem(
                        "an embedded endpoint cannot have replicas",
                        field=f"{where}.replicas",
                        value=list(self.replicas),
                    )
                )
        else:
            for name, u in [("url", self.url)] + [(f"replicas[{i}]", r) for i, r in enumerate(self.replicas)]:
                why = url_problem(u)
                if why is not None:
                    out.append(
                        Problem(
                            why,
                            field=f"{where}.{name}",
                            value=public_url(u),
                            fix="use 'embedded' or a base URL like http://127.0.0.1:8000/v1 "
                            "(ports run from 1 to 65535)",
                        )
                    )
            for name in ("model_path", "n_threads", "n_batch"):
                if getattr(self, name) is not None:
                    out.append(
                        Problem(
                            f"{name} only applies to url: embedded", field=f"{where}.{name}", value=getattr(self, name)
                        )
                    )
        if self.api_key_env is not None and not self.api_key_env.strip():
            out.append(
                Problem(
                    "api_key_env must name an environment variable",
                    field=f"{where}.api_key_env",
                    value=self.api_key_env,
                )
            )
        return out


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to generate from. ``prompt`` is the completions prompt, or the user message for chat."""

    item_id: str
    prompt: str
    system_prompt: str | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))

    def params(self) -> dict:
        """Every sampling parameter in canonical form (stop sequences sorted and deduplicated: order is moot)."""
        return {
            "max_tokens": int(self.max_tokens),
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "stop": sorted(set(self.stop)),
            "seed": None if self.seed is None else int(self.seed),
            "logprobs": None if self.logprobs is None else int(self.logprobs),
        }

    @property
    def greedy(self) -> bool:
        return float(self.temperature) == 0.0


@dataclass(frozen=True)
class Generation:
    """One generated completion, as the server reported it.

    ``finish_reason`` is ``"stop"``, ``"length"`` or ``None`` when the server did not say (never guessed).
    ``tokens``/``token_logprobs`` are filled when logprobs were asked for. ``reasoning_text`` holds a chat
    message's separate ``reasoning_content`` when a server splits reasoning out. ``truncated_from`` is set by
    ``truncate_to_tokens``: the completion length of the generation this one was cut from. ``no_output`` says why
    there is no text when the server returned none (``"null content"``: a chat message's content was null,
    ``"null text"``: a completion's text was null); ``text`` is then ``""``. ``served_by``: which of an arm's
    endpoints (``url`` or a replica, credentials stripped) produced it. The Records keep the cause, and the
    checks count such an output as no answer (probable budget exhaustion when ``finish_reason`` is absent or
    ``"length"``), never as a silent 0.
    """

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    tokens: tuple[str, ...] | None = None
    token_logprobs: tuple[float, ...] | None = None
    cached: bool = False
    reasoning_text: str | None = None
    truncated_from: int | None = None
    no_output: str | None = None
    # The base URL (credentials stripped) of the replica that produced it; "embedded" for the in-process model.
    served_by: str | None = None


class TruncationError(ServerError):
    """``truncate_to_tokens`` cannot derive the shorter generation exactly; run at that budget instead."""


# ---------------------------------------------------------------------------------------------------------------
# helpers


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable http(s) base URL (bad scheme, no host, a port outside 1..65535), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "not an http(s) base URL"
    if not parts.hostname:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not a port a server listens on"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "the URL contains whitespace or control characters"
    return None


def public_url(url: str) -> str:
    """The URL without user:password@ (so credentials in a URL never reach a message or a cache key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def api_key_of(endpoint: Endpoint) -> str | None:
    if endpoint.api_key_env is None:
        return None
    key = os.environ.get(endpoint.api_key_env)
    from audit.textsafe import register_secret

    register_secret(key)
    if not key:
        raise InputError(
            [
                Problem(
                    f"environment variable {endpoint.api_key_env} is not set (it should hold the API key)",
                    field="api_key_env",
                    value=endpoint.api_key_env,
                    fix=f"export {endpoint.api_key_env}=... before running, or remove api_key_env for a server "
                    "without authentication",
                )
            ]
        )
    return key


def scrub_secret(text: str, secret: str | None) -> str:
    from audit.textsafe import scrub

    return scrub(text, secret)


def scrub_generation(gen: "Generation") -> "Generation":
    """``gen`` with every registered secret (API keys, :mod:`audit.textsafe`) removed from its text. A server
    that echoes the key into a completion must not get it into the cache or a report. When the text held a
    secret, the token strings (which would spell it in pieces) are dropped too."""
    from audit.textsafe import contains_secret, scrub

    texts = (gen.text, gen.reasoning_text)
    if any(contains_secret(t) for t in texts) or (gen.tokens is not None and contains_secret("".join(gen.tokens))):
        return replace(
            gen,
            text=scrub(gen.text),
            reasoning_text=scrub(gen.reasoning_text) if gen.reasoning_text else gen.reasoning_text,
            tokens=None,
            token_logprobs=None,
        )
    return gen


def request_path(endpoint: Endpoint) -> str:
    return "/chat/completions" if endpoint.api == "chat" else "/completions"


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def build_payload(endpoint: Endpoint, request: GenerationRequest) -> dict:
    """The JSON body for POST {base}/completions or {base}/chat/completions (only standard OpenAI fields)."""
    body: dict[str, Any] = {
        "model": endpoint.model,
        "max_tokens": int(request.max_tokens),
        "temperature": float(request.temperature),
        "top_p": float(request.top_p),
        "stream": False,
    }
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = int(request.seed)
    if endpoint.api == "chat":
        messages = []
        if request.system_prompt is not None:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.prompt})
        body["messages"] = messages
        if request.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = int(request.logprobs)
    else:
        body["prompt"] = request.prompt
        if request.logprobs is not None:
            body["logprobs"] = int(request.logprobs)
    return body


class MalformedResponse(Exception):
    """The server answered 200 but not with a usable completion (retried like a 5xx)."""


def parse_response(data: Any, api: str, latency_s: float) -> Generation:
    """An OpenAI-shaped completion / chat completion dict → ``Generation``. Raises ``MalformedResponse``."""
    if not isinstance(data, dict):
        raise MalformedResponse(f"response is {type(data).__name__}, not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        detail = data.get("error") if isinstance(data.get("error"), (str, dict)) else None
        raise MalformedResponse("response has no choices" + (f" (error: {str(detail)[:200]})" if detail else ""))
    choice = choices[0]
    reasoning = None
    fr = choice.get("finish_reason")
    finish = _FINISH_ALIASES.get(fr, fr) if isinstance(fr, str) else None
    no_output = None
    if api == "chat":
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("chat response choice has no message")
        text = message.get("content")
        if text is None and "content" in message:
            # Reasoning models return null content when the budget ran out inside the reasoning (or everything
            # went into reasoning_content, a refusal, a tool call): no output, recorded with its cause.
            text, no_output = "", "null content"
        reasoning = message.get("reasoning_content", message.get("reasoning"))
        if not isinstance(reasoning, str):
            reasoning = None
    else:
        text = choice.get("text")
        if text is None and "text" in choice and finish is not None:
            # The server said why it stopped (e.g. "length"): no output, not a broken response.
            text, no_output = "", "null text"
    if not isinstance(text, str):
        raise MalformedResponse(
            "response choice has no text"
            + (" and no finish_reason (the server did not say why)" if finish is None else "")
        )

    raw_usage = data.get("usage")
    usage = raw_usage if isinstance(raw_usage, dict) else {}
    tokens = token_logprobs = None
    lp = choice.get("logprobs")
    if isinstance(lp, dict):
        if isinstance(lp.get("content"), list):  # chat format
            entries = [e for e in lp["content"] if isinstance(e, dict)]
            tokens = tuple(str(e.get("token", "")) for e in entries)
            token_logprobs = tuple(_float(e.get("logprob")) for e in entries)
        elif isinstance(lp.get("tokens"), list):  # completions format
            tokens = tuple(str(t) for t in lp["tokens"])
            raw = lp.get("token_logprobs")
            if isinstance(raw, list) and len(raw) == len(tokens):
                token_logprobs = tuple(_float(v) for v in raw)
    return Generation(
        text=text,
        finish_reason=finish,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        latency_s=float(latency_s),
        tokens=tokens,
        token_logprobs=token_logprobs,
        reasoning_text=reasoning,
        no_output=no_output,
    )


def _float(v: Any) -> float:
    if v is None or isinstance(v, (bool, str)):
        return math.nan
    try:
        return float(v)  # numpy scalars from the embedded model included
    except (TypeError, ValueError):
        return math.nan
