"""Extraction of reward code from an LLM reply: fenced blocks with or without a language tag,
helpers and imports kept, prose ignored. Returns None when the reply holds no Python code."""

from __future__ import annotations

import ast
import re
import textwrap
import threading

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})"  # an opening fence of three or more backticks or tildes
    r"[ \t]*(?P<lang>[\w+#.-]*)[^\n]*\n"  # an optional language tag, then the rest of the line
    r"(?P<body>.*?)"  # the block's contents, as little as possible
    r"(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",  # up to the matching closing fence, or the end (truncated)
    re.MULTILINE | re.DOTALL,
)
PYTHON_TAGS = {"", "python", "py", "python3", "py3", "torch", "pytorch"}
ENTRY_DEF = re.compile(r"^def compute_reward\s*\(", re.MULTILINE)
CODE_START = re.compile(r"^(import |from \w[\w.]* import |def |@|class )")
INVISIBLE = str.maketrans(
    {"\ufeff": "", "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\u00a0": " "}
)
"""Characters a chat interface or a model leaves in text that Python rejects in code: a byte-order
mark, zero-width spaces and joiners (removed), non-breaking spaces (made plain spaces)."""


def _dedent(body: str, width: int) -> str:
    """Remove up to `width` leading spaces from every line (the fence's own indentation)."""
    return textwrap.dedent(body) if width else body


def _looks_like_code(line: str) -> bool:
    return not line.strip() or line[0] in " \t#" or bool(CODE_START.match(line))


def _blocks(reply: str) -> list[str]:
    """Bodies of the fenced blocks that may hold Python, in order."""
    found = []
    for match in FENCE.finditer(reply):
        if match.group("lang").lower() in PYTHON_TAGS:
            body = _dedent(match.group("body"), len(match.group("indent")))
            if body.strip():
                found.append(body.rstrip() + "\n")
    return found


def _unfenced(reply: str) -> str | None:
    """Code pasted without fences: from the first code line before `def compute_reward` to the
    last line that still looks like code."""
    lines = reply.splitlines()
    entry = next((i for i, ln in enumerate(lines) if ENTRY_DEF.match(ln)), None)
    if entry is None:
        return None
    start = entry
    while start > 0 and _looks_like_code(lines[start - 1]):
        start -= 1
    while not CODE_START.match(lines[start]):
        start += 1
    end = entry + 1
    while end < len(lines) and _looks_like_code(lines[end]):
        end += 1
    while end > entry + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    return "\n".join(lines[start:end]).strip() + "\n"


def _defines_code(block: str) -> bool:
    return any(CODE_START.match(line) for line in block.splitlines())


AST_LOCK = threading.RLock()
"""Held while a tree is built from source or compiled: CPython 3.11 keeps the AST converter's
recursion depth in interpreter-wide state, so two threads converting at once (the loop checks
candidates in threads; a garbage collection inside one conversion lets another thread run) can
fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905): it
ended a solve here, on fetch_reach's third iteration. Here, the first stage that parses
the model's code; the reward checks and the contract parse through it too."""


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, one thread at a time (AST_LOCK). Source nested past the parser's limits (a
    sum of thousands of terms, thousands of unary minus signs) is a SyntaxError that says so, not
    the RecursionError or MemoryError the parser raises for it."""
    with AST_LOCK:
        try:
            return ast.parse(source, filename=filename)
        except (RecursionError, MemoryError) as exc:
            raise SyntaxError(
                f"the code nests too deeply for Python's parser ({type(exc).__name__}): "
                "compute long expressions in steps, or with a loop or torch.stack(...).sum()"
            ) from None
        except ValueError as exc:  # a null byte: a SyntaxError from Python 3.11.4 and 3.12 on
            raise SyntaxError(str(exc)) from None


REASONING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
"""A reasoning model's thoughts, which some providers leave in the reply: sketches in them (a
numpy version it then dropped) are not the answer."""


def _names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The names a module defines at its top level, and the names it reads."""
    defined: set[str] = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return defined, read


def _helpers(blocks: list[str], main: str) -> list[str]:
    """The earlier blocks the main one needs: those defining a name it (or a block it needs)
    reads and does not define itself, in their order. Where a block is not Python, every earlier
    block that defines code (the checks then say what is wrong)."""
    try:  # one thread at a time, deep nesting a SyntaxError (as the checks parse)
        defined, read = _names(parse(main))
        parsed = [_names(parse(b)) for b in blocks]
    except SyntaxError:
        return [b for b in blocks if _defines_code(b)]
    needed = read - defined
    keep: list[int] = []
    for i in reversed(range(len(blocks))):
        gives, wants = parsed[i]
        if gives & needed:
            keep.append(i)
            needed = (needed - gives) | (wants - gives)
    return [blocks[i] for i in sorted(keep)]


def extract_code(reply: str) -> str | None:
    """The reward code in a reply: the last block defining `compute_reward`, preceded by the
    earlier blocks that define what it uses (helper functions, imports); None when there is no
    code. A reasoning model's <think> section is skipped where the answer after it holds code."""
    reply = reply.replace("\r\n", "\n").replace("\r", "\n").translate(INVISIBLE)
    answer = REASONING.sub("", reply)
    if answer != reply and (_blocks(answer) or _unfenced(answer) is not None):
        reply = answer
    blocks = _blocks(reply)
    entries = [i for i, b in enumerate(blocks) if ENTRY_DEF.search(b)]
    if not entries:
        unfenced = _unfenced(reply)
        if unfenced is not None:
            return unfenced
        # Python without compute_reward: return it so the checks can say what is missing
        code = [b for b in blocks if _defines_code(b)]
        return "\n\n".join(b.strip("\n") for b in code) + "\n" if code else None
    main = entries[-1]
    helpers = _helpers([b for i, b in enumerate(blocks[:main]) if i not in entries], blocks[main])
    return "\n\n".join(b.strip("\n") for b in [*helpers, blocks[main]]) + "\n"
