"""first_chain_break, the chain-only hot loop, against bodies built the way the engine seals them."""

from __future__ import annotations

from audit.chains import first_chain_break
from workflow.chain import GENESIS_HASH, seal
from workflow.events import RecordedEvent

CASE = "DSP-01JH3K8V9Q-7TZ4XW"


def _chain(
    case_id: str, datas: list[dict[str, object]], *, seqs: list[int] | None = None
) -> list[tuple[int, str, str, str]]:
    """Rows (seq, body, prev_hash, hash) of a sealed chain; ``seqs`` overrides the seq inside each body."""
    rows, prev = [], GENESIS_HASH
    for position, data in enumerate(datas):
        seq = position + 1
        event = RecordedEvent(
            case_id=case_id,
            seq=(seqs or [])[position] if seqs else seq,
            type="message",
            at="2026-11-28T12:00:00Z",
            actor_id='u-"1"',
            actor_role="consumer",
            data=data,
            workflow_version="w" * 64,
            policy_version="p" * 64,
            prev_hash=prev,
            hash="",
        )
        sealed, body = seal(event)
        rows.append((seq, body.decode("utf-8"), prev, sealed.hash))
        prev = sealed.hash
    return rows


def test_an_intact_chain_holds_even_with_lookalike_keys_inside_data() -> None:
    tricky = {"case_id": "DSP-OTHER", "seq": 99, "text": ',"seq":7, "case_id":'}
    rows = _chain(CASE, [{"text": "hello"}, tricky, {"nested": {"seq": 3, "case_id": CASE}}])
    assert first_chain_break(CASE, rows) is None
    assert first_chain_break(CASE, []) is None


def test_each_kind_of_break_is_found_at_its_position() -> None:
    rows = _chain(CASE, [{"n": i} for i in range(5)])
    flipped = [*rows[:2], (rows[2][0], rows[2][1].replace('"n":2', '"n":3'), *rows[2][2:]), *rows[3:]]
    assert first_chain_break(CASE, flipped) == 2
    assert first_chain_break(CASE, [*rows[:1], *rows[2:]]) == 1  # a row gone
    assert first_chain_break(CASE, [rows[0], rows[2], rows[1], *rows[3:]]) == 1  # two swapped
    relinked = [*rows[:3], (4, rows[3][1], rows[1][3], rows[3][3]), rows[4]]
    assert first_chain_break(CASE, relinked) == 3  # names another previous hash
    assert first_chain_break("DSP-ANOTHER", rows) == 0  # a chain of another case


def test_a_first_event_of_another_case_or_seq_is_caught() -> None:
    # Every hash is right, but the first body belongs to another case (or says another seq).
    assert first_chain_break(CASE, _chain("DSP-OTHER", [{"n": 1}, {"n": 2}])) == 0
    assert first_chain_break(CASE, _chain(CASE, [{"n": 1}], seqs=[2])) == 0


def test_a_later_event_copied_from_another_case_does_not_link() -> None:
    mine, theirs = _chain(CASE, [{"n": i} for i in range(3)]), _chain("DSP-OTHER", [{"n": i} for i in range(3)])
    assert first_chain_break(CASE, [*mine[:2], theirs[2]]) == 2
