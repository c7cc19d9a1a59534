"""Untrusted text on its way out: escaped for the terminal and Markdown, and scrubbed of secrets.

Claim titles, log lines, model outputs and server error bodies are written by someone else. Two rules hold for
everything ``audit`` prints or persists, and this module is the one place that applies them:

* **No control bytes reach a terminal or a Markdown file raw.** An escape sequence in a claim title could retitle
  the terminal (OSC), move the cursor or hide text; a bidi override could reorder what a reviewer reads.
  :func:`for_terminal` and :func:`for_markdown` replace each such character with a visible escape (``\\x1b``,
  ``\\u202e``); newlines (and tabs on the terminal) are kept.
* **No secret is persisted or printed.** The runner registers every API key it reads (:func:`register_secret`);
  :func:`scrub` replaces each registered value with ``***`` wherever it appears — in generations before they are
  cached or reported, in error messages, in written reports. Values shorter than 4 characters are not treated as
  secrets (they would match everywhere).
"""
from __future__ import annotations

import re
import threading

# C0 controls except \t and \n, DEL, C1 controls, and the Unicode formatting characters that reorder or hide
# text (bidi embeddings/overrides/isolates, line/paragraph separators, zero-width joiners are harmless and kept).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_NO_TAB = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def for_terminal(text: object) -> str:
    """``text`` with every control character except newline and tab shown as a visible escape."""
    return _UNSAFE.sub(_visible, str(text))


def for_markdown(text: object) -> str:
    """``text`` with every control character except newline shown as a visible escape (tabs too)."""
    return _UNSAFE_NO_TAB.sub(_visible, str(text))


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character :func:`for_markdown` would escape."""
    return _UNSAFE_NO_TAB.search(text) is not None


# ---------------------------------------------------------------------------------------------------------------
# secrets

MIN_SECRET_LEN = 4
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` (an API key just read from the environment) so that :func:`scrub` removes it."""
    if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)
            if value.strip() != value:
                _secrets.add(value.strip())


def register_env_secrets(names) -> None:
    """Register the values of the environment variables ``names`` (those a claim's ``api_key_env`` names)."""
    import os

    for name in names:
        if isinstance(name, str) and name:
            register_secret(os.environ.get(name))


def secrets_known() -> int:
    """How many secret values are registered (for tests; the values themselves are never exposed)."""
    return len(_secrets)


def scrub(text: str, extra: str | None = None) -> str:
    """``text`` with every registered secret (and ``extra``) replaced by ``***``."""
    if not isinstance(text, str):
        return text
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    if extra and len(extra) >= MIN_SECRET_LEN and extra not in values:
        values.insert(0, extra)
    for v in values:
        if v in text:
            text = text.replace(v, "***")
    return text


def contains_secret(text: str | None) -> bool:
    return isinstance(text, str) and scrub(text) != text
