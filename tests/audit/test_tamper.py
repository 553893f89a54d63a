"""Any single-field change to any stored event is detected, naming the case and the seq."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from audit.chains import verify_case
from cases.service import CaseService
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT
from tests.support.builders import make_service, new_case

# A change per column of the events table, as a tamperer with SQL access would make it.
CHANGES = {
    "body": "body = replace(body, '\"seq\":', '\"seq\": ')",
    # A message's id (the texts themselves are markers now: privacy/markers.py).
    "body_data": "body = replace(body, '\"msg', '\"msh')",
    "prev_hash": "prev_hash = (CASE WHEN substr(prev_hash, 1, 1) = '1' THEN '2' ELSE '1' END) || substr(prev_hash, 2)",
    "hash": "hash = (CASE WHEN substr(hash, 1, 1) = '1' THEN '2' ELSE '1' END) || substr(hash, 2)",
    "type": "type = 'rated'",
    "actor_id": "actor_id = 'someone-else'",
    "actor_role": "actor_role = 'system'",
    "at": "at = '2020-01-01 00:00:00'",
    "seq": "seq = 99",
}


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    svc = make_service(db_url)
    yield svc
    svc.db.dispose()


@pytest.mark.parametrize("column", sorted(CHANGES))
@pytest.mark.parametrize("target_seq", [1, 3, 5])
def test_single_field_change_is_detected(service: CaseService, column: str, target_seq: int) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case())
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=CONSUMER, case_id=case.id, name="comment", data={"body": "Please hurry"})
    service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "Please wait"})
    service.execute(actor=MEDIATOR, case_id=case.id, name="comment", data={"body": "Please both be patient"})
    other = service.file(actor=CONSUMER, new_case=new_case(order_ref="other"))
    assignment = CHANGES[column]
    if column == "at" and service.db.dialect == "postgresql":
        assignment = "at = TIMESTAMPTZ '2020-01-01 00:00:00+00'"
    with service.db.write() as session:
        session.execute(
            text(f"UPDATE events SET {assignment} WHERE case_id = :c AND seq = :s"), {"c": case.id, "s": target_seq}
        )
    with service.db.read() as session:
        damages = verify_case(session, service.registry, case.id)
        assert verify_case(session, service.registry, other.id) == []
    if column == "body_data" and target_seq != 3 and target_seq != 5:
        # seq 1 ('filed') has no message id in it: nothing was changed, nothing may be reported.
        assert damages == []
        return
    assert damages, f"changing {column} of seq {target_seq} went unnoticed"
    assert damages[0].case_id == case.id
    assert damages[0].seq == target_seq, damages
