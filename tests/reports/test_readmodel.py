"""The reports' read model (reports/readmodel.py) on both backends: each event that changes a
figure changes its counters at the next refresh, a refreshed model equals one rebuilt from the
log, its answers equal the reports computed from the log, and two concurrent writers lose
nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import delete, select
from typer.testing import CliRunner

from cases.service import CaseService
from cases.triage import Triage
from cli import app
from reports import readmodel
from reports.hotspots import hotspots_report
from reports.merchants import merchants_report
from reports.satisfaction import satisfaction_report
from reports.sla import sla_report
from runtime.settings import get_settings
from store import schema
from store.db import make_engine
from store.tables import REPORT_DIRTY, REPORT_FILINGS, REPORT_MERCHANT_CLOCKS, REPORT_MERCHANTS, REPORT_RATINGS
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT, T0
from tests.support.builders import make_clocked_service, new_case
from tests.support.report_data import END, build
from workflow.model import Actor

RULES = Triage.load().supervision


def zone_of(service: CaseService) -> str:
    return readmodel.desk_zone(service.calendars())


def midnight(service: CaseService, moment: datetime, days: int = 0) -> datetime:
    zone = ZoneInfo(zone_of(service))
    return datetime.combine(moment.astimezone(zone).date() + timedelta(days=days), time(), tzinfo=zone)


def refreshed(service: CaseService) -> dict[str, list[tuple[Any, ...]]]:
    assert readmodel.refresh(service.db, service.calendars(), service.clock.now())
    return readmodel.counters(service.db)


def rebuilt(service: CaseService) -> dict[str, list[tuple[Any, ...]]]:
    readmodel.rebuild(service.db, service.calendars(), service.clock.now())
    return readmodel.counters(service.db)


def live(service: CaseService, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """The parts of the reports computed from the log that the read model answers."""
    calendars = service.calendars()
    hotspots = hotspots_report(service.db, calendars, since=since, until=until).to_dict()
    merchants = merchants_report(service.db, RULES, since=since, until=until).to_dict()
    sla = sla_report(service.db, calendars, since=since, until=until).to_dict()
    satisfaction = satisfaction_report(service.db, since=since, until=until).to_dict()
    return {
        "hotspots": {"categories": hotspots["categories"]},
        "merchants": {"data": merchants["data"]},
        "sla": {k: sla[k] for k in ("by_clock", "by_mediator", "by_category")},
        "satisfaction": {k: satisfaction[k] for k in ("by_mediator", "by_category")},
    }


def answers(service: CaseService, since: datetime, until: datetime) -> dict[str, dict[str, Any]] | None:
    return readmodel.dashboard_answers(
        service.db, service.calendars(), RULES, since=since, until=until, now=service.clock.now()
    )


def checking_every_write(service: CaseService, check: Callable[[], None]) -> None:
    """Run ``check`` after every filing and command ``service`` carries out."""
    file, execute = service.file, service.execute

    def filed(**kwargs: Any) -> Any:
        result = file(**kwargs)
        check()
        return result

    def executed(**kwargs: Any) -> Any:
        result = execute(**kwargs)
        check()
        return result

    service.file = filed  # type: ignore[method-assign]
    service.execute = executed  # type: ignore[method-assign]


def test_every_write_refreshes_to_what_a_rebuild_gives_and_the_answers_equal_the_reports(db_url: str) -> None:
    service = make_clocked_service(db_url, start=T0 - timedelta(days=7))
    try:
        steps = []

        def check() -> None:
            incremental = refreshed(service)
            assert incremental == rebuilt(service)
            steps.append(incremental)

        checking_every_write(service, check)
        build(service)
        check()  # the timer sweep's breach (fired between two commands) is in too
        # Filings, assignments, responses, offers, settlements, closings, reopening, a ruling,
        # ratings and a breached clock, each checked after its write.
        assert len(steps) == 31
        assert steps[-1]["report_sla"], "the breached response clock and the met ones are counted"
        for since, until in (
            (midnight(service, T0, -7), midnight(service, END)),
            (midnight(service, T0), midnight(service, T0, 3)),
            (midnight(service, T0, 2), midnight(service, T0, 3)),
            (midnight(service, T0, -30), midnight(service, T0, 30)),
        ):
            got = answers(service, since, until)
            assert got is not None, "whole days in the desk's zone are answered by the read model"
            assert got == live(service, since, until)
        assert got is not None
        assert got["hotspots"]["categories"] and got["merchants"]["data"] and got["sla"]["by_clock"]
        assert got["satisfaction"]["by_mediator"]
        # A period that does not start at a midnight is left to the reports from the log.
        assert answers(service, T0, midnight(service, END)) is None
    finally:
        service.db.dispose()


def test_each_kind_of_event_moves_its_counters(db_url: str) -> None:
    service = make_clocked_service(db_url, start=T0)
    zone = ZoneInfo(zone_of(service))
    day = T0.astimezone(zone).date().isoformat()
    try:

        def read(table: Any, *columns: str) -> list[tuple[Any, ...]]:
            refreshed(service)
            with service.db.read() as session:
                return [tuple(r) for r in session.execute(select(*(table.c[c] for c in columns)).order_by(table.c.day))]

        case = service.file(actor=CONSUMER, new_case=new_case(category="counterfeit", order_ref="R-1"))
        assert read(REPORT_FILINGS, "day", "category", "complaints") == [(day, "counterfeit", 1)]
        with service.db.read() as session:
            assert session.execute(select(REPORT_DIRTY)).all() == [], "the refresh took the mark"
        service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
        service.execute(actor=MERCHANT, case_id=case.id, name="accept_claim")
        # The assignment clock and the merchant's response clock ended met: a run each, no breach.
        assert sorted(read(REPORT_MERCHANT_CLOCKS, "merchant_id", "clock", "runs", "breaches")) == [
            ("m-1", "assignment", 1, 0),
            ("m-1", "merchant_response", 1, 0),
        ]
        service.execute(actor=MEDIATOR, case_id=case.id, name="close")
        service.execute(actor=CONSUMER, case_id=case.id, name="rate", data={"score": 2})
        assert read(REPORT_RATINGS, "mediator_id", "category", "party", "score", "ratings") == [
            (MEDIATOR.id, "counterfeit", "consumer", 2, 1)
        ]
        merchants = read(REPORT_MERCHANTS, "complaints", "decided", "settlements", "settled_by_agreement")
        figures = merchants_report(service.db, RULES, since=midnight(service, T0), until=midnight(service, T0, 1))
        (row,) = figures.to_dict()["data"]
        assert merchants == [(1, row["decided"], row["settlements"], row["settled_by_agreement"])]
        assert rebuilt(service) == refreshed(service)
    finally:
        service.db.dispose()


def test_two_concurrent_writers_lose_nothing(db_url: str) -> None:
    service = make_clocked_service(db_url, start=T0)
    failures: list[BaseException] = []
    stop = threading.Event()
    try:

        def writer(n: int) -> None:
            consumer = Actor(f"c-w{n}", "consumer")
            try:
                for i in range(8):
                    case = service.file(
                        actor=consumer,
                        new_case=new_case(consumer_id=consumer.id, order_ref=f"W{n}-{i}", category="counterfeit"),
                    )
                    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
                    if i % 2:
                        service.execute(actor=MERCHANT, case_id=case.id, name="accept_claim")
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        def refresher() -> None:
            try:
                while not stop.is_set():
                    readmodel.refresh(service.db, service.calendars(), service.clock.now())
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
        watcher = threading.Thread(target=refresher)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        watcher.join()
        assert not failures, failures
        incremental = refreshed(service)
        assert sum(row[-1] for row in incremental["report_filings"]) == 16
        assert incremental == rebuilt(service)
        since, until = midnight(service, T0, -1), midnight(service, T0, 1)
        assert answers(service, since, until) == live(service, since, until)
    finally:
        service.db.dispose()


def test_another_zone_or_calendars_leave_the_answer_to_the_log_until_a_rebuild(db_url: str) -> None:
    service = make_clocked_service(db_url, start=T0)
    try:
        service.file(actor=CONSUMER, new_case=new_case(order_ref="Z-1"))
        calendars = dict(service.calendars())
        since, until = midnight(service, T0), midnight(service, T0, 1)
        assert answers(service, since, until) is not None
        default = calendars["default"]
        moved = replace(default, extra_days_off=default.extra_days_off | {(T0 + timedelta(days=3)).date()})
        changed = {**calendars, "default": moved}
        assert not readmodel.refresh(service.db, changed, service.clock.now())
        assert readmodel.dashboard_answers(service.db, changed, RULES, since=since, until=until, now=T0) is None
        readmodel.rebuild(service.db, changed, service.clock.now())
        assert readmodel.refresh(service.db, changed, service.clock.now())
        assert not readmodel.refresh(service.db, calendars, service.clock.now())
    finally:
        service.db.dispose()


def test_the_rebuild_command_fills_the_model_from_the_log(db_url: str) -> None:
    """``disputes report rebuild`` after rows that bypassed the write path (as a bulk load does):
    the marks are gone, the figures are the log's."""
    service = make_clocked_service(db_url, start=T0)
    try:
        for n in range(3):
            service.file(actor=CONSUMER, new_case=new_case(order_ref=f"B-{n}", category="counterfeit"))
        with service.db.write() as session:
            session.execute(delete(REPORT_DIRTY))  # as if the cases had been copied in
        engine = make_engine(db_url)
        try:
            config = schema.alembic_config()
            with engine.begin() as conn:  # the tables are the models' (create_all): say they are at head
                config.attributes["connection"] = conn
                command.stamp(config, "head")
        finally:
            engine.dispose()
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(
                app,
                ["report", "rebuild"],
                env={"DISPUTES_DATABASE_URL": db_url, "DISPUTES_ENVIRONMENT": "test", "COLUMNS": "200"},
            )
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        assert "3 cases folded" in result.output
        counted = readmodel.counters(service.db)
        assert [row[-1] for row in counted["report_filings"]] == [3]
        assert refreshed(service) == counted
    finally:
        service.db.dispose()
