"""Take every secret (and, unless allowed, every prompt) out of an event before it leaves the process.

Three nets, because a secret can sit anywhere in an event (headers, a URL, an exception message, a breadcrumb
from a log line, a stack frame's local variables):
- by field name: the values of `authorization`, `x-api-key`, `api_key`, `cookie`, `password`... whatever they hold;
- by value: every secret we know (provider keys, passwords in service URLs, found in the environment), also
  URL-encoded and base64-encoded (at any alignment, so one inside `Basic base64(user:key)` is found too);
- by shape: our own API keys (`csk_...`), OpenAI `sk-...`, Google `AIza...`, fal `uuid:hex` keys, any
  `Bearer`/`Basic` credential, a password in a URL, and signature/key query parameters (presigned URLs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from models.scrub import encoded_forms

REDACTED = "[Filtered]"
PROMPT_REDACTED = "[prompt]"

# Environment variables holding secrets: the value itself, or for URLs the password inside it.
SECRET_ENV = (
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "FAL_KEY",
    "FAL_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "RAY_AUTH_TOKEN",
)
SECRET_URL_ENV = ("CASCADE_REDIS_URL", "CASCADE_DATABASE_URL", "CASCADE_STORAGE_URL")

_SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "x_api_key",
        "x_goog_api_key",
        "api_key",
        "apikey",
        "key_secret",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "private_key",
        "credentials",
        *(name.lower() for name in SECRET_ENV),
    }
)
_SECRET_SUFFIXES = ("_api_key", "_secret", "_token", "_password")
_PROMPT_NAMES = frozenset({"prompt", "negative_prompt", "revised_prompt", "prompts"})
_MIN_SECRET = 8  # shorter "secrets" would blank out ordinary words

_SHAPES = [
    (re.compile(r"csk_[0-9a-f]{12}_[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"AIza[0-9A-Za-z_-]{30,}"), REDACTED),
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}:[0-9a-fA-F]{16,}"),
        REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=:-]+"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    (
        re.compile(
            r"(?i)([?&](?:key|api_key|apikey|token|access_token|sig|signature|x-amz-signature|x-amz-credential"
            r"|x-amz-security-token)=)[^&\s#\"']+"
        ),
        rf"\1{REDACTED}",
    ),
]


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def is_secret_name(name: str) -> bool:
    n = _normal(name)
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


def _alternatives(secret: str) -> set[str]:
    """Regex alternatives for one secret's shapes; percent-encoding's hex digits may come back in either case."""
    exact, percent = encoded_forms(secret)
    return {re.escape(f) for f in exact if len(f) >= _MIN_SECRET} | {
        f"(?i:{re.escape(f)})" for f in percent if len(f) >= _MIN_SECRET
    }


def secrets_from_env(environ: Mapping[str, str] | None = None) -> set[str]:
    env = os.environ if environ is None else environ
    found = {env[name].strip() for name in SECRET_ENV if env.get(name, "").strip()}
    for name in SECRET_URL_ENV:
        value = env.get(name, "").strip()
        if value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password:
                found.add(password)
    return found


class Scrubber:
    """Callable on any JSON-like value (a serialized Sentry event); returns a scrubbed copy."""

    def __init__(self, secrets: Iterable[str] = (), *, send_prompts: bool = False) -> None:
        self.send_prompts = send_prompts
        self._literals: set[str] = set()
        self._literal_re: re.Pattern[str] | None = None
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if len(secret) >= _MIN_SECRET:
                self._literals |= _alternatives(secret)
        if self._literals:
            # Longest first, so a secret's encoded form is not cut short by a shorter one inside it.
            alternatives = sorted(self._literals, key=len, reverse=True)
            self._literal_re = re.compile("|".join(alternatives))

    def scrub(self, value: Any, prompt: str | None = None) -> Any:
        prompt_forms = None
        if prompt and not self.send_prompts and len(prompt.strip()) >= 4:
            prompt_forms = re.compile("|".join(re.escape(f) for f in {prompt, quote(prompt), quote_plus(prompt)}))
        return self._walk(value, prompt_forms)

    def text(self, text: str) -> str:
        return self._text(text, None)

    def _walk(self, value: Any, prompt_forms: re.Pattern[str] | None) -> Any:
        if isinstance(value, str):
            return self._text(value, prompt_forms)
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                name = key if isinstance(key, str) else ""
                if item not in (None, "", [], {}) and is_secret_name(name):
                    out[key] = REDACTED
                elif item not in (None, "") and not self.send_prompts and _normal(name) in _PROMPT_NAMES:
                    out[key] = PROMPT_REDACTED
                else:
                    out[key] = self._walk(item, prompt_forms)
            return out
        if isinstance(value, list | tuple):
            # Header lists come as [name, value] pairs.
            if len(value) == 2 and isinstance(value[0], str) and is_secret_name(value[0]) and value[1]:
                return [value[0], REDACTED]
            return [self._walk(item, prompt_forms) for item in value]
        return value

    def _text(self, text: str, prompt_forms: re.Pattern[str] | None) -> str:
        if self._literal_re is not None:
            text = self._literal_re.sub(REDACTED, text)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        if prompt_forms is not None:
            text = prompt_forms.sub(PROMPT_REDACTED, text)
        return text
