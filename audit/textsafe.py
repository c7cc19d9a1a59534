"""Untrusted text on its way out: escaped for the terminal and Markdown, and scrubbed of secrets.

Claim titles, log lines, model outputs and server error bodies are written by someone else. Two rules hold for
everything ``audit`` prints or persists, and this module is the one place that applies them:

* **No control bytes reach a terminal or a Markdown file raw.** An escape sequence in a claim title could retitle
  the terminal (OSC), move the cursor or hide text; a bidi override could reorder what a reviewer reads.
  :func:`for_terminal` and :func:`for_markdown` replace each such character with a visible escape (``\\x1b``,
  ``\\u202e``); newlines (and tabs on the terminal) are kept.
* **No secret is persisted or printed.** The runner registers every API key it reads (:func:`register_secret`);
  :func:`scrub` replaces it with ``***`` wherever it appears — in generations before they are cached or reported,
  in error messages, in written reports — in every form a server may echo it: any letter case, any piece of it of
  :data:`MIN_FRAGMENT` (8) characters or more (a key cut short, or with its last characters masked), and whatever
  follows ``Bearer`` (an echoed ``Authorization`` header, registered key or not). Values shorter than 4 characters
  are not treated as secrets (they would match everywhere); keys shorter than 8 characters are matched whole and in
  their own case only (vLLM's placeholder key ``EMPTY`` must not remove the word "empty" from model outputs).
* **No live Markdown from untrusted text.** :func:`md_inert` makes text from a claim, a log or a model inert in
  ``summary.md``: images, links whose scheme is not http(s), raw autolinks and ``@mentions`` are neutralised
  (shown as text), without making the page unreadable.
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


MIN_FRAGMENT = 8
"""The shortest piece of a registered key that :func:`scrub` removes on its own."""
_BEARER = re.compile(
    r"(\bBearer\s+|\bBEARER\s+|(?i:\bauthorization\b[\"']?\s*[:=]\s*[\"']?bearer\s+))"
    r"([A-Za-z0-9\-._~+/]{8,}=*)"
)
_patterns: dict[str, re.Pattern] = {}


def _pattern(secret: str) -> re.Pattern:
    """A case-insensitive pattern matching every piece of ``secret`` of MIN_FRAGMENT characters (the whole secret
    when it is shorter). A match is then extended to the longest piece of the secret it starts."""
    pat = _patterns.get(secret)
    if pat is None:
        if len(secret) < MIN_FRAGMENT:
            # A short value ("EMPTY", vLLM's placeholder key) is matched whole and in its own case only: matched
            # in any case it would remove ordinary words from model outputs and change their scores.
            pat = re.compile(re.escape(secret))
        else:
            n = MIN_FRAGMENT
            pieces = sorted({secret[i : i + n].lower() for i in range(len(secret) - n + 1)})
            pat = re.compile("|".join(re.escape(p) for p in pieces), re.IGNORECASE)
        if len(_patterns) < 256:
            _patterns[secret] = pat
    return pat


def _scrub_one(text: str, secret: str) -> str:
    pat = _pattern(secret)
    low_secret = secret.lower()
    out: list[str] = []
    pos = 0
    while True:
        m = pat.search(text, pos)
        if m is None:
            break
        start, end = m.start(), m.end()
        # grow the match while it is still a piece of the key (a longer echo is removed whole, not in pieces)
        while len(secret) >= MIN_FRAGMENT and end < len(text) and text[start : end + 1].lower() in low_secret:
            end += 1
        out.append(text[pos:start])
        out.append("***")
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def scrub(text: str, extra: str | None = None) -> str:
    """``text`` with every registered secret (and ``extra``) replaced by ``***``: in any letter case, any piece of
    8 characters or more, and the value after ``Bearer``."""
    if not isinstance(text, str):
        return text
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    if extra and len(extra) >= MIN_SECRET_LEN and extra not in values:
        values.insert(0, extra)
    for v in values:
        text = _scrub_one(text, v)
    if "earer" in text or "EARER" in text:  # an echoed Authorization header, whatever the key
        text = _BEARER.sub(lambda m: m.group(1) + "***", text)
    return text


# ---------------------------------------------------------------------------------------------------------------
# Markdown

_MD_LINK = re.compile(r"(!?)\[([^\[\]\n]*)\]\(\s*<?([^)\s>]*)>?((?:\s+[^)\n]*)?)\)")
_MD_IMAGE = re.compile(r"!\[")
_MD_REF = re.compile(r"^(\s{0,3})\[([^\]\n]+)\]:", re.M)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^<>\s]*)>")
_BARE_URL = re.compile(r"(?i)\b(https?|ftps?|mailto|xmpp|javascript|vbscript|data|file|tel|sms|irc):(//)?(?=\S)")
_WWW = re.compile(r"(?i)\bwww\.")
_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9_\-])")
_SAFE_SCHEMES = ("http", "https")
_LINKY = re.compile(r"(?i)[!\[<@:]|www\.")


def md_inert(text: object) -> str:
    """Untrusted text made inert for Markdown (GitHub's flavour): no image is loaded, no link other than http(s)
    is clickable, no bare URL or ``www.`` becomes a link, no ``@name`` notifies anyone, no reference definition
    hides a link. What the text says stays readable: ``![x](u)`` shows as ``!\\[x\\](u)``, ``@everyone`` as
    ``@\u200beveryone``, a URL with a zero-width space after its scheme. An inline ``[label](https://...)`` link
    stays a link. Control characters are left to :func:`for_markdown`; table pipes and HTML to the caller."""
    s = str(text)
    if not _LINKY.search(s):
        return s
    kept: list[str] = []

    def link(m: re.Match) -> str:
        bang, label, url, title = m.groups()
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if not bang and scheme in _SAFE_SCHEMES and url.lower().startswith(("http://", "https://")) and len(url) > 8:
            kept.append("[" + _mentions(_BARE_URL.sub(_break, label)) + "](" + url + title + ")")
            return f"\ue000{len(kept) - 1}\ue001"
        # an image never renders (a remote image is a tracking beacon); any other scheme is not a link
        return bang + "\\[" + label + "\\](" + _break_scheme(url) + title + ")"

    s = _MD_LINK.sub(link, s)
    s = _MD_IMAGE.sub(lambda m: "!\\[", s)
    s = _MD_REF.sub(lambda m: m.group(1) + "\\[" + m.group(2) + "\\]:", s)
    s = _AUTOLINK.sub(lambda m: "&lt;" + _break_scheme(m.group(1)) + "&gt;", s)
    s = _BARE_URL.sub(_break, s)
    s = _WWW.sub(lambda m: m.group(0)[:3] + "\u200b.", s)
    s = _mentions(s)
    if kept:
        s = re.sub("\ue000(\\d+)\ue001", lambda m: kept[int(m.group(1))], s)
    return s


def _mentions(s: str) -> str:
    return _MENTION.sub("@\u200b", s)


def _break(m: re.Match) -> str:
    return m.group(1) + "\u200b:" + (m.group(2) or "")


def _break_scheme(url: str) -> str:
    """``url`` with a zero-width space after its scheme's colon: still readable, never turned into a link."""
    return url.replace(":", "\u200b:", 1) if ":" in url else url


def contains_secret(text: str | None) -> bool:
    return isinstance(text, str) and scrub(text) != text
