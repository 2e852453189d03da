"""textstats runs natively here, against the SDK's test double: same code as in the sandbox."""

import random
from collections import Counter

import app  # noqa: F401  (registers the job)
from app import SENTENCE_END, WORD
from wasmjob_sdk.testing import FakeHost, run, run_until_done

VOCAB = "the a of and to in wasm job python sandbox café naïve résumé don’t it's checkpoint".split()


def sample(n_lines: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(VOCAB) for _ in range(rng.randint(0, 14))]
        lines.append(" ".join(words) + rng.choice(["", ".", "!", "?", " -", "..."]))
    return "\n".join(lines)


def reference(text: str) -> dict:
    """The statistics in one pass over the whole text, without the job's chunking."""
    lines = text.split("\n")
    words = [w for line in lines for w in WORD.findall(line.lower())]
    counts = Counter(words)
    return {
        "chars": len(text),
        "lines": len(lines),
        "words": len(words),
        "sentences": sum(len(SENTENCE_END.findall(line)) for line in lines),
        "longest": min(words, key=lambda w: (-len(w), w)) if words else "",
        "top": [[w, n] for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
    }


def pick(result: dict) -> dict:
    return {k: result[k] for k in ("chars", "lines", "words", "sentences", "longest", "top")}


def test_statistics_match_a_one_pass_reference():
    text = sample(3000)
    out = run("textstats", {"text": text, "label": "t"})
    assert out.completed, out.reason
    assert pick(out.result) == reference(text)
    assert out.host.kv["result:t"]


def test_interrupted_runs_resume_from_their_checkpoint_to_the_same_statistics():
    text = sample(3000)
    done, runs = run_until_done("textstats", {"text": text, "label": "r", "checkpoint_lines": 50}, interrupt_every=700)
    assert runs > 3
    assert pick(done.result) == reference(text)


def test_checkpoints_never_carry_the_text():
    out = run("textstats", {"text": sample(3000), "label": "c"}, FakeHost(interrupt_at=700))
    assert out.interrupted
    assert out.result["text"] == "" and out.result["next_chunk"] + out.result["next_line"] > 0


def test_without_a_text_the_job_fails_with_a_reason():
    out = run("textstats", {})
    assert not out.completed and "give a text" in out.reason
