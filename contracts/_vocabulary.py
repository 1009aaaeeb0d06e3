"""A provider's status words, and the engine's phases they stand for.

The lifecycle engine speaks five phases: `queued`, `running`, `succeeded`, `failed`,
`cancelled`. Every provider has its own words for them (`pending`/`processing`/`completed`,
`queued`/`in_progress`, `PENDING`/`THROTTLED`/`RUNNING`/`SUCCEEDED`, `starting`/`succeeded`/
`canceled`...). A `Vocabulary` is read once from a contract's status schema: each word it
documents (an `enum` or `const`, in every branch of a task that is a oneOf by status) maps to a
phase, by the common words below (any case) or by the `x-mockserver-status: {WORD: phase}`
extension beside the enum. The fake answers a phase with its *canonical* word (the first word
the contract lists for it); a scenario may also script any other word of the contract (a
`THROTTLED` step), which is then answered as written.

A word no rule maps is a `ContractError` with the JSON pointer of the enum entry, saying what to
add. A contract whose status is a plain string speaks today's words (`pending`, `processing`,
`completed`, `failed`, `cancelled`), the vocabulary the shipped scenarios are written in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

PHASES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_PHASES = frozenset({"succeeded", "failed", "cancelled"})
PHASE_RANK = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}

# Today's words: the vocabulary of the shipped contracts and scenarios, one per phase.
OUR_WORDS = {
    "queued": "pending",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}

_OURS_BACK = {word: phase for phase, word in OUR_WORDS.items()}

# Common words of async task APIs and the phase each means (compared in lower case).
COMMON_WORDS = {
    **{word: "queued" for word in ("pending", "queued", "starting", "waiting", "submitted", "created", "scheduled",
                                   "throttled", "in_queue", "enqueued", "not_started", "accepted", "preparing")},
    **{word: "running" for word in ("processing", "in_progress", "running", "dreaming", "generating", "started",
                                    "active", "rendering", "working")},
    **{word: "succeeded" for word in ("completed", "succeeded", "success", "successful", "succeed", "done",
                                      "finished", "complete", "ready")},
    **{word: "failed" for word in ("failed", "failure", "fail", "error", "errored", "expired", "rejected",
                                   "timed_out", "timeout")},
    **{word: "cancelled" for word in ("cancelled", "canceled", "aborted", "cancel")},
}  # fmt: skip


@dataclass(frozen=True)
class Vocabulary:
    """The words a contract's tasks use for their status, each with its phase."""

    words: dict[str, str]  # every documented word (as spelt) -> its phase
    canonical: dict[str, str]  # phase -> the word answered for it
    documented: bool = True  # False: the contract lists no words (today's are used)
    _folded: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for word in self.words:
            self._folded.setdefault(word.lower(), word)

    @classmethod
    def ours(cls) -> Vocabulary:
        """Today's words: what a contract without a status enum (and every scenario) speaks."""
        return cls({word: phase for phase, word in OUR_WORDS.items()}, dict(OUR_WORDS), documented=False)

    def word(self, phase: str) -> str:
        return self.canonical[phase]

    def phase(self, word: str) -> str | None:
        """The phase of a documented word (exactly as spelt); None for another word."""
        return self.words.get(word)

    def resolve(self, word: str) -> tuple[str, str | None] | None:
        """(phase, the word to answer) for a status a scenario names: one of this contract's
        words (exactly, else in any case), else a phase's name or one of today's words (then
        answered with the phase's canonical word: None). None when it means nothing here."""
        spelt = word if word in self.words else self._folded.get(word.lower())
        if spelt is not None:
            phase = self.words[spelt]
            return phase, (None if self.canonical[phase] == spelt else spelt)
        ours = word if word in PHASE_RANK else _OURS_BACK.get(word)
        return (ours, None) if ours is not None else None

    def phase_of_answer(self, word: object) -> str | None:
        """The phase of a status word a deployment answered: one of the contract's words (any
        case); None for a word it does not document. A contract that lists no words reads
        today's words, the phases' names and the common words."""
        if not isinstance(word, str):
            return None
        spelt = word if word in self.words else self._folded.get(word.lower())
        if spelt is not None:
            return self.words[spelt]
        if self.documented:
            return None
        lowered = word.lower()
        return lowered if lowered in PHASE_RANK else COMMON_WORDS.get(lowered)

    def describe(self) -> str:
        return ", ".join(f"{word} ({phase})" for word, phase in self.words.items())


def build(
    documented: list[tuple[str, str]],
    explicit: dict[str, str],
    explicit_at: str,
    error: Callable[[str, str], Exception],
) -> Vocabulary:
    """A vocabulary from the words a contract documents, in order, each with the JSON pointer where
    it is written, and its `x-mockserver-status` mapping (written at `explicit_at`). A word no
    rule maps, or a mapping to something that is not a phase, raises `error(pointer, message)`."""
    for word, phase in explicit.items():
        if phase not in PHASE_RANK:
            raise error(
                explicit_at, f"x-mockserver-status maps {word!r} to {phase!r}; a phase is one of {', '.join(PHASES)}"
            )
    words: dict[str, str] = {}
    for word, pointer in documented:
        mapped = explicit.get(word) or COMMON_WORDS.get(word.lower())
        if mapped is None:
            raise error(
                pointer,
                f"the status word {word!r} has no phase: map it with 'x-mockserver-status: "
                f"{{{word}: queued|running|succeeded|failed|cancelled}}' on the status schema",
            )
        words.setdefault(word, mapped)
    for word, phase in explicit.items():
        words.setdefault(word, phase)  # a word the enum does not list: the extension says it exists
    canonical = {}
    for phase in PHASES:
        found = next((word for word, mapped in words.items() if mapped == phase), None)
        if found is not None:
            canonical[phase] = found
    # A provider with one word for both waiting and working answers that word for both.
    if "queued" not in canonical and "running" in canonical:
        canonical["queued"] = canonical["running"]
    if "running" not in canonical and "queued" in canonical:
        canonical["running"] = canonical["queued"]
    for phase in PHASES:  # a phase the contract has no word for: today's word (off the contract)
        canonical.setdefault(phase, OUR_WORDS[phase])
    return Vocabulary(words, canonical)
