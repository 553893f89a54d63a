"""The pure half: markers commit to salted values, sealed rows open only under their marker,
key files refuse what is broken, and a rotation re-wraps every live case key."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from audit.privacy import verify_erasures
from cases.personal import PersonalData, TamperedValue
from cases.queries import load_case
from cases.service import CaseService
from privacy.fields import markers_in, substitute
from privacy.keys import load_key_file, load_or_create_key_file, rotate_key_file
from privacy.markers import ERASED, commitment, is_marker, is_pseudonym, matches, parse, protect
from privacy.sealing import TamperedValueError, new_data_key, open_value, seal_value
from store.tables import CASE_KEYS, CASES, PERSONAL_VALUES
from tests.support.actors import AUDITOR, CONSUMER, MEDIATOR, MERCHANT
from tests.support.builders import make_service, new_case
from workflow.errors import ConfigError


def test_a_marker_commits_to_a_salted_value() -> None:
    one, two = protect("13812345678"), protect("13812345678")
    assert is_marker(one.marker) and one.marker != two.marker  # the same number, two salts
    ref, digest = parse(one.marker) or ("", "")
    assert ref == one.ref and digest == commitment(one.salt, "13812345678")
    assert matches(one.marker, one.salt, "13812345678") and not matches(one.marker, one.salt, "13812345679")


def test_a_sealed_value_opens_only_under_its_own_marker() -> None:
    key = new_data_key()
    first, second = protect("张伟"), protect("李娜")
    sealed = seal_value(key, first)
    assert open_value(key, first.marker, sealed) == (first.salt, "张伟")
    with pytest.raises(TamperedValueError):
        open_value(key, second.marker, sealed)  # a row moved under another marker
    with pytest.raises(TamperedValueError):
        open_value(new_data_key(), first.marker, sealed)  # another case's key


def test_substituting_copies_a_snapshot_with_only_its_personal_texts_replaced(service: CaseService) -> None:
    """Revealing copies the model's frozen dataclasses field by field: the copy equals what
    ``dataclasses.replace`` gives, nested offers are replaced too, and the original keeps its markers."""
    case = service.file(actor=CONSUMER, new_case=new_case(subject="甲", description="乙"))
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    case = service.execute(
        actor=MERCHANT, case_id=case.id, name="propose_offer", data={"amount": 100, "currency": "CNY", "terms": "丙"}
    )
    with service.db.read() as session:
        logged, _ = load_case(session, case.id)
    texts = markers_in(logged, also=is_pseudonym)
    table = {text: f"value of {text[:12]}" for text in texts}
    copy = substitute(logged, table)
    assert copy == dataclasses.replace(
        logged,
        subject=table[logged.subject],
        description=table[logged.description],
        order_ref=table[logged.order_ref],
        consumer_id=table[logged.consumer_id],
        offers=(dataclasses.replace(logged.offers[0], terms=table[logged.offers[0].terms]),),
    )
    assert is_marker(logged.subject) and type(copy) is type(logged)


def test_broken_key_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    for text in ("not json", json.dumps({"version": 1, "current": "a", "keys": {"a": "c2hvcnQ="}})):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_key_file(path)
        assert str(path) in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_key_file(tmp_path / "missing.json")


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[CaseService]:
    keys, generated = load_or_create_key_file(tmp_path / "keys.json")
    assert generated and (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    svc = make_service(db_url)
    svc.privacy = PersonalData(keys)
    yield svc
    svc.db.dispose()


def test_rotation_rewraps_every_case_key_and_values_still_read(service: CaseService, tmp_path: Path) -> None:
    case_id = service.file(actor=CONSUMER, new_case=new_case(description="电话13812345678")).id
    rotated = rotate_key_file(tmp_path / "keys.json")
    service.privacy = PersonalData(rotated)
    assert service.rewrap_keys() == 1
    with service.db.read() as session:
        assert session.execute(select(CASE_KEYS.c.kek_id)).scalars().all() == [rotated.current]
    # Only the new key is needed now.
    only_new = load_key_file(tmp_path / "keys.json")
    only_new.keys = {rotated.current: rotated.keys[rotated.current]}
    service.privacy = PersonalData(only_new)
    assert service.get(actor=AUDITOR, case_id=case_id).description == "电话13812345678"


def test_a_swapped_value_row_is_caught_on_reading(service: CaseService) -> None:
    case_id = service.file(actor=CONSUMER, new_case=new_case(subject="甲", description="乙")).id
    with service.db.write() as session:
        rows = session.execute(select(PERSONAL_VALUES.c.ref, PERSONAL_VALUES.c.sealed)).all()
        first, second = rows[0], rows[1]
        session.execute(update(PERSONAL_VALUES).where(PERSONAL_VALUES.c.ref == first.ref).values(sealed=second.sealed))
    assert service.privacy is not None
    service.privacy.forget([case_id])
    with pytest.raises(TamperedValue):
        service.get(actor=AUDITOR, case_id=case_id)


def test_a_value_read_before_is_checked_again_once_its_row_is_swapped(service: CaseService) -> None:
    """Values opened under a cached key are remembered by marker and sealed bytes: a row altered
    after it was read (the key still cached, nothing forgotten) is opened and caught afresh."""
    case_id = service.file(actor=CONSUMER, new_case=new_case(subject="甲", description="乙")).id
    assert service.get(actor=AUDITOR, case_id=case_id).subject == "甲"
    with service.db.write() as session:
        rows = session.execute(select(PERSONAL_VALUES.c.ref, PERSONAL_VALUES.c.sealed)).all()
        first, second = rows[0], rows[1]
        session.execute(update(PERSONAL_VALUES).where(PERSONAL_VALUES.c.ref == first.ref).values(sealed=second.sealed))
    with pytest.raises(TamperedValue):
        service.get(actor=AUDITOR, case_id=case_id)


def test_an_erasure_by_another_process_shows_at_once_in_one_that_read_the_case(service: CaseService) -> None:
    """Another process's erasure is not hidden by what this one remembers: its key and the values
    it opened stay cached here, but the rows are gone, so the texts read ``[erased]``."""
    case_id = service.file(actor=CONSUMER, new_case=new_case(description="王小明 13812345678")).id
    service.execute(actor=CONSUMER, case_id=case_id, name="withdraw")
    assert service.get(actor=AUDITOR, case_id=case_id).description == "王小明 13812345678"
    assert service.privacy is not None
    # Another process: the same database and keys, its own caches.
    other = replace(service, privacy=PersonalData(service.privacy.keys))
    outcome = other.erase_subject(user_id=CONSUMER.id, basis="request", approved_by="adm-1")
    assert outcome.erased == (case_id,)
    case = service.get(actor=AUDITOR, case_id=case_id)
    assert (case.description, case.consumer_id) == (ERASED, ERASED)


def test_a_commands_answer_shows_an_erasure_by_another_process(service: CaseService) -> None:
    """A command's answer takes the values of the case's previous answer from memory while the
    case is still at that answer's head; another process's erasure appends to the case, so the
    next command here answers ``[erased]``, not what it remembers."""
    case_id = service.file(actor=CONSUMER, new_case=new_case(description="王小明 13812345678")).id
    answer = service.execute(actor=MERCHANT, case_id=case_id, name="comment", data={"body": "we will check"})
    assert (answer.description, answer.consumer_id) == ("王小明 13812345678", CONSUMER.id)
    closed = service.execute(actor=CONSUMER, case_id=case_id, name="withdraw")
    assert (closed.description, closed.consumer_id) == ("王小明 13812345678", CONSUMER.id)
    assert service.privacy is not None
    other = replace(service, privacy=PersonalData(service.privacy.keys))
    assert other.erase_subject(user_id=CONSUMER.id, basis="request", approved_by="adm-1").erased == (case_id,)
    service.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    after = service.execute(actor=MERCHANT, case_id=case_id, name="comment", data={"body": "closing note"})
    assert (after.description, after.subject, after.order_ref, after.consumer_id) == (ERASED,) * 4


def test_a_filing_after_another_process_erased_the_consumer_gets_a_new_pseudonym(service: CaseService) -> None:
    """A filing may take the consumer's pseudonym from memory (PostgreSQL): once another process
    has erased the consumer, that pseudonym is refused and the filing made under a new one, which
    the consumer's own reads find."""
    first = service.file(actor=CONSUMER, new_case=new_case(description="王小明 13812345678")).id
    service.execute(actor=CONSUMER, case_id=first, name="withdraw")
    assert service.privacy is not None
    other = replace(service, privacy=PersonalData(service.privacy.keys))
    assert other.erase_subject(user_id=CONSUMER.id, basis="request", approved_by="adm-1").erased == (first,)
    second = service.file(actor=CONSUMER, new_case=new_case(description="又坏了"))
    assert (second.consumer_id, second.description) == (CONSUMER.id, "又坏了")
    assert service.get(actor=CONSUMER, case_id=second.id).description == "又坏了"
    with service.db.read() as session:
        pseudonyms = {row.id: row.consumer_id for row in session.execute(select(CASES.c.id, CASES.c.consumer_id))}
    assert pseudonyms[first] != pseudonyms[second.id]
    assert service.get(actor=AUDITOR, case_id=first).consumer_id == ERASED


def test_a_text_written_after_another_process_erased_the_case_gets_a_new_key(service: CaseService) -> None:
    """A process that still holds an erased case's key (another one erased it) does not seal a
    new text under it: a closed case's key row is read for writing, the tombstone gives a new key,
    and every erasure still holds."""
    case_id = service.file(actor=CONSUMER, new_case=new_case(description="王小明 13812345678")).id
    service.execute(actor=CONSUMER, case_id=case_id, name="withdraw")
    assert service.get(actor=AUDITOR, case_id=case_id).description == "王小明 13812345678"  # key cached
    assert service.privacy is not None
    other = replace(service, privacy=PersonalData(service.privacy.keys))
    assert other.erase_subject(user_id=CONSUMER.id, basis="request", approved_by="adm-1").erased == (case_id,)
    service.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    service.execute(actor=MERCHANT, case_id=case_id, name="comment", data={"body": "closing note"})
    assert verify_erasures(service.db) == []
    for reader in (service, replace(service, privacy=PersonalData(service.privacy.keys))):
        bodies = [m.body for m in reader.messages(actor=AUDITOR, case_id=case_id).data]
        assert bodies[-1] == "closing note", bodies
