"""textstats: word, line and sentence statistics over a large text, resumable at any chunk.

The text comes in the parameters (``{"text": "...", "label": "docs"}``). The first run
moves it into the key-value store in chunks, so checkpoints stay small (counters and
the word table, never the text) and a resumed run reads the chunk it had reached and
skips the lines it had counted. It checkpoints every ``checkpoint_lines`` lines (and
at the end of every chunk). The result is also stored under ``result:<label>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from wasmjob_sdk import Context, JobError, job

CHUNK_CHARS = 8192  # a chunk is at most 32 KiB of UTF-8: well under the store's 64 KiB values
TOP = 10
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


@dataclass
class Stats:
    text: str = ""  # parameters only: moved to the key-value store on the first run
    label: str = ""
    checkpoint_lines: int = 500
    chunks: int = -1  # how many chunks the text was split into (-1: not yet)
    next_chunk: int = 0
    next_line: int = 0  # complete lines of the current chunk already counted
    carry: str = ""  # the unfinished last line of the previous chunk
    chars: int = 0
    lines: int = 0
    words: int = 0
    sentences: int = 0
    longest: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    top: list[list] = field(default_factory=list)


def count_line(stats: Stats, line: str) -> None:
    """Fold one complete line into ``stats`` (the same function as in a plain CPython run)."""
    stats.lines += 1
    stats.sentences += len(SENTENCE_END.findall(line))
    counts = stats.counts
    for word in WORD.findall(line.lower()):
        stats.words += 1
        counts[word] = counts.get(word, 0) + 1
        if len(word) > len(stats.longest) or (len(word) == len(stats.longest) and word < stats.longest):
            stats.longest = word


def finish(stats: Stats) -> None:
    if stats.carry:
        count_line(stats, stats.carry)
        stats.carry = ""
    ranked = sorted(stats.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    stats.top = [[word, n] for word, n in ranked]


def _key(ctx: Context, label: str, i: int) -> str:
    return f"input:{label or ctx.job_id}:{i}"


@job
def textstats(ctx: Context, stats: Stats) -> Stats:
    if stats.chunks < 0:  # first run: park the text in the store, chunk by chunk
        if not stats.text:
            raise JobError('give a text: --params \'{"text": "...", "label": "name"}\'')
        pieces = [stats.text[i : i + CHUNK_CHARS] for i in range(0, len(stats.text), CHUNK_CHARS)]
        for i, piece in enumerate(pieces):
            ctx.kv_set(_key(ctx, stats.label, i), piece)
        stats.chars = len(stats.text)
        stats.text, stats.chunks = "", len(pieces)
        ctx.checkpoint(stats)
    every = max(1, stats.checkpoint_lines)
    while stats.next_chunk < stats.chunks:
        piece = ctx.kv_get(_key(ctx, stats.label, stats.next_chunk))
        if piece is None:
            raise JobError(f"input chunk {stats.next_chunk} is missing from the key-value store")
        *complete, rest = (stats.carry + piece).split("\n")
        for index in range(stats.next_line, len(complete)):
            ctx.check()  # paused or cancelled: the SDK checkpoints `stats` (this line not yet counted)
            count_line(stats, complete[index])
            stats.next_line = index + 1
            ctx.add_items(1)
            if stats.next_line % every == 0:
                done = (stats.next_chunk + stats.next_line / len(complete)) / stats.chunks
                ctx.progress(done, f"chunk {stats.next_chunk + 1}/{stats.chunks}")
                ctx.checkpoint(stats)
        stats.carry, stats.next_chunk, stats.next_line = rest, stats.next_chunk + 1, 0
        ctx.add_bytes(len(piece.encode()))
        ctx.progress(stats.next_chunk / stats.chunks, f"chunk {stats.next_chunk}/{stats.chunks}")
        ctx.checkpoint(stats)
    finish(stats)
    if stats.label:
        summary = {k: getattr(stats, k) for k in ("chars", "lines", "words", "sentences", "longest", "top")}
        ctx.kv_set(f"result:{stats.label}", json.dumps(summary))
    ctx.log(f"{stats.words} words in {stats.lines} lines; top: {stats.top[:3]}")
    return stats
