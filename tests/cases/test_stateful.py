"""Hypothesis stateful test: random actors fire random triggers and actions at CaseService.

A plain model (a dict of transitions written out by hand, independent of the
workflow machinery) predicts every outcome. After every step: the stored state
equals the model, seq has no gaps, replay equals the projection, the chain verifies,
and a refused command changed nothing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from audit.chains import verify_case
from audit.replay import replay
from cases.service import CaseService
from policies.base import AllowAllAuthorizer
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, SENIOR
from tests.support.builders import make_service, new_case
from tests.support.workflow_factories import DESIGN_TABLE
from workflow.errors import DisputeError, InvalidCommandError, TransitionNotAllowedError
from workflow.text import text_problem

TABLE = DESIGN_TABLE
TRIGGERS = sorted({t for _, t in TABLE})
OFFER_STATES = {"assigned", "mediating"}
ACTORS = {"consumer": CONSUMER, "merchant": MERCHANT, "mediator": MEDIATOR, "senior": SENIOR}


class CaseModel(RuleBasedStateMachine):
    service: CaseService

    def __init__(self) -> None:
        super().__init__()
        self.case_id = ""
        self.state = "filed"
        self.version = 1
        self.offers: dict[str, tuple[str, str]] = {}  # id -> (party, status)
        self.accepted: str | None = None
        self.requests: dict[str, tuple[str, bool]] = {}  # id -> (party, open)
        self.rated: set[str] = set()
        self.seen: dict[int, Any] = {}  # version -> the case as the service returned it then

    @initialize()
    def file(self) -> None:
        case = self.service.file(actor=CONSUMER, new_case=new_case())
        self.case_id = case.id
        self.seen[case.version] = case

    def _apply(self, actor_key: str, name: str, data: dict[str, Any], reason: str, expect_ok: bool) -> bool:
        before = self.service.get(actor=MEDIATOR, case_id=self.case_id)
        try:
            after = self.service.execute(
                actor=ACTORS[actor_key],
                case_id=self.case_id,
                name=name,
                data=data,
                reason=reason,
                expected_version=self.version,
            )
        except (TransitionNotAllowedError, InvalidCommandError) as exc:
            assert not expect_ok, f"{name} by {actor_key} refused unexpectedly: {exc}"
            assert self.service.get(actor=MEDIATOR, case_id=self.case_id) == before
            return False
        assert expect_ok, f"{name} by {actor_key} in {self.state} should have been refused"
        assert after.version == self.version + 1
        self.version = after.version
        self.seen[after.version] = after
        return True

    @rule(trigger=st.sampled_from(TRIGGERS), with_reason=st.booleans())
    def fire(self, trigger: str, with_reason: bool) -> None:
        dest = TABLE.get((self.state, trigger))
        expect_ok = dest is not None
        if trigger == "settle" and self.accepted is None:
            expect_ok = False
        if trigger == "reject" and not with_reason:
            expect_ok = False
        data: dict[str, Any] = {}
        if trigger == "rule":
            data = {"decision": "partial", "awarded_amount": 100, "citations": ["crpl-24"]}
        actor = "senior" if trigger in ("rule", "reject") else "mediator"
        if self._apply(actor, trigger, data, "a reason" if with_reason else "", expect_ok):
            assert dest is not None
            if dest != self.state:
                self.offers = {k: (p, "expired" if s == "open" else s) for k, (p, s) in self.offers.items()}
                self.accepted = None
            self.state = dest

    @rule(party=st.sampled_from(["consumer", "merchant"]), amount=st.integers(0, 29900))
    def propose(self, party: str, amount: int) -> None:
        ok = self.state in OFFER_STATES
        if self._apply(party, "propose_offer", {"amount": amount}, "", ok):
            self.offers[f"off{self.version}"] = (party, "open")

    @rule(party=st.sampled_from(["consumer", "merchant"]), accept=st.booleans(), pick=st.integers(0, 5))
    def answer(self, party: str, accept: bool, pick: int) -> None:
        ids = sorted(self.offers) or ["off0"]
        offer_id = ids[pick % len(ids)]
        proposer, status = self.offers.get(offer_id, ("nobody", "missing"))
        ok = self.state in OFFER_STATES and status == "open" and proposer != party
        name = "accept_offer" if accept else "reject_offer"
        if self._apply(party, name, {"offer_id": offer_id}, "", ok):
            self.offers[offer_id] = (proposer, "accepted" if accept else "rejected")
            if accept:
                self.accepted = offer_id

    @rule(party=st.sampled_from(["consumer", "merchant"]))
    def request_info(self, party: str) -> None:
        ok = self.state in {"assigned", "mediating", "escalated"}
        if self._apply("mediator", "request_info", {"party": party, "question": "Photos?"}, "", ok):
            self.requests[f"rq{self.version}"] = (party, True)

    @rule(party=st.sampled_from(["consumer", "merchant"]), pick=st.integers(0, 5))
    def provide_info(self, party: str, pick: int) -> None:
        ids = sorted(self.requests) or ["rq0"]
        request_id = ids[pick % len(ids)]
        addressed, is_open = self.requests.get(request_id, ("nobody", False))
        ok = self.state in {"assigned", "mediating", "escalated"} and is_open and addressed == party
        if self._apply(party, "provide_info", {"request_id": request_id, "answer": "Here."}, "", ok):
            self.requests[request_id] = (addressed, False)

    @rule(actor=st.sampled_from(list(ACTORS)), body=st.text(min_size=0, max_size=30))
    def comment(self, actor: str, body: str) -> None:
        # Which texts are acceptable is workflow/text.py's rule (tested on its own in
        # tests/workflow/test_text.py); here the service must follow it.
        self._apply(actor, "comment", {"body": body}, "", text_problem(body, required=True) is None)

    @rule(party=st.sampled_from(["consumer", "merchant"]), score=st.integers(0, 6))
    def rate(self, party: str, score: int) -> None:
        ok = self.state == "closed" and party not in self.rated and 1 <= score <= 5
        if self._apply(party, "rate", {"score": score}, "", ok):
            self.rated.add(party)

    @invariant()
    def projection_matches_model_and_log(self) -> None:
        if not self.case_id:
            return
        stored = self.service.get(actor=MEDIATOR, case_id=self.case_id)
        assert stored.state == self.state and stored.version == self.version
        assert stored.accepted_offer_id == self.accepted
        with self.service.db.read() as session:
            assert verify_case(session, self.service.registry, self.case_id) == []
        history = self.service.events(actor=MEDIATOR, case_id=self.case_id, limit=200).data
        assert [e.seq for e in history] == list(range(1, self.version + 1))
        # Replay at every point the service answered equals what it answered then.
        with self.service.db.read() as session:
            for version, then in self.seen.items():
                replayed = replay(session, self.service.registry, self.case_id, seq=version).snapshot
                assert self.service.reveal(replayed, session=session) == then


def test_case_service_against_a_plain_model(db_url: str) -> None:
    # The engine core against the model; who may do what is tested in tests/policies.
    service = make_service(db_url, authorizer=AllowAllAuthorizer())
    CaseModel.service = service
    try:
        run_state_machine_as_test(
            CaseModel,
            settings=settings(
                max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
            ),
        )
    finally:
        service.db.dispose()


def test_dispute_errors_share_a_base() -> None:
    assert issubclass(TransitionNotAllowedError, DisputeError) and issubclass(InvalidCommandError, DisputeError)
