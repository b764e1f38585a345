"""Deterministic conversation text: pseudo-English with a Zipf-like word mix.

Everything derives from ``random.Random(seed)``, so every system gets the same
messages and a child process can regenerate them from the seed alone.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import random
from collections.abc import Iterator
from pathlib import Path

_COMMON = (
    "the of and to a in is it you that for on are with as be at this have from or by "
    "not but what all were when we there can an your which their if do will each "
    "about how up out them then she many some so these would other into has more "
).split()
_TOPICS = (
    "flight hotel lisbon porto madrid train ticket booking airport luggage visa "
    "python function database index query cache server deploy docker kernel recipe "
    "garlic onion tomato basil pasta oven butter flour sugar invoice budget payment "
    "refund customer account contract meeting calendar agent tool search memory "
    "session branch message summary context prompt weather forecast rain storm wind "
    "temperature mountain river forest ocean guitar piano concert album melody rhythm "
    "painting museum gallery sculpture compiler parser token grammar syntax lexer "
    "runtime thread process socket battery charger screen keyboard laptop monitor "
    "printer router cable network garden flower tree seed soil water harvest tomato "
    "pepper cucumber "
).split()
_TOOLS = ("search_flights", "run_query", "read_file", "get_weather", "send_email")


def _sentence(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(6, 18)):
        if rng.random() < 0.55:
            words.append(rng.choice(_COMMON))
        else:
            # Zipf-like: low indexes far more often than high ones.
            words.append(
                _TOPICS[
                    min(len(_TOPICS) - 1, int(rng.paretovariate(1.1)) - 1)
                    if rng.random() < 0.5
                    else rng.randrange(len(_TOPICS))
                ]
            )
    return " ".join(words).capitalize() + rng.choice((".", ".", ".", "?", "!"))


def text(rng: random.Random, low: int = 200, high: int = 2000) -> str:
    target = rng.randint(low, high)
    parts = []
    size = 0
    while size < target:
        sentence = _sentence(rng)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)[:target]


def conversation(seed: int, length: int) -> list[dict]:
    """``length`` messages: user/assistant turns with occasional tool calls and results."""
    rng = random.Random(seed)
    messages: list[dict] = []
    call = 0
    while len(messages) < length:
        messages.append({"role": "user", "content": text(rng, 40, 400)})
        if len(messages) < length - 2 and rng.random() < 0.15:
            call += 1
            call_id = f"call_{seed}_{call}"
            messages.append(
                {
                    "role": "assistant",
                    "content": text(rng, 20, 120),
                    "tool_call": {
                        "id": call_id,
                        "name": rng.choice(_TOOLS),
                        "arguments": {"q": rng.choice(_TOPICS)},
                    },
                }
            )
            messages.append(
                {"role": "tool", "content": text(rng, 100, 800), "tool_call_id": call_id}
            )
        if len(messages) < length:
            messages.append({"role": "assistant", "content": text(rng)})
    return messages[:length]


def session_lengths(count: int, total: int, low: int, high: int, seed: int = 7) -> list[int]:
    """``count`` lengths in [low, high] summing to ``total`` (skewed: many short, few long)."""
    rng = random.Random(seed)
    raw = [min(high, max(low, int(rng.paretovariate(1.5) * low))) for _ in range(count)]
    scale = total / sum(raw)
    lengths = [min(high, max(low, round(n * scale))) for n in raw]
    index = 0
    while sum(lengths) != total:  # nudge to the exact total within the bounds
        step = 1 if sum(lengths) < total else -1
        if low <= lengths[index] + step <= high:
            lengths[index] += step
        index = (index + 1) % count
    return lengths


def queries(count: int, seed: int = 99) -> list[str]:
    """Search queries of 1-3 topic words."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(_TOPICS[:60], rng.randint(1, 3))) for _ in range(count)]


def cached(lengths: list[int], cache_dir: Path) -> Path:
    """The file in ``cache_dir`` holding ``conversation(index, length)`` for each length,
    written once (marshal, one conversation after another) and reused by later calls:
    generating a million messages takes about a minute, reading them a few seconds, and
    W2 and the scaling store need the same ones for every system and backend.
    """
    # Keyed by the lengths and by this generator's own source, so a kept --workdir
    # never serves text from an older generator.
    key = hashlib.sha256(Path(__file__).read_bytes() + repr(lengths).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"conversations-{key}.marshal"
    if not path.exists():
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as out:
            for index, length in enumerate(lengths):
                marshal.dump(conversation(index, length), out)
        partial.replace(path)
    return path


def conversations(lengths: list[int], cache_dir: Path | None = None) -> Iterator[list[dict]]:
    """``conversation(index, length)`` for each length in order, streamed (one
    conversation in memory at a time); read from :func:`cached` with ``cache_dir``."""
    if cache_dir is None:
        for index, length in enumerate(lengths):
            yield conversation(index, length)
        return
    with cached(lengths, cache_dir).open("rb") as source:
        for _ in lengths:
            yield marshal.load(source)
