"""The browser's chain verification (console/static/verify.js) run by Node: its RFC 8785
canonicalisation gives Python rfc8785's bytes on generated documents (CJK and astral text,
control characters, numbers of every kind, nesting), and its chain walk accepts a case sealed by
the engine and names the first broken seq of a tampered one."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cases.service import CaseService
from store.tables import EVENTS
from tests.support.actors import CONSUMER, MEDIATOR, MERCHANT
from tests.support.builders import make_clocked_service, new_case

VERIFY_JS = Path(__file__).resolve().parents[2] / "console" / "static" / "verify.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js runs the browser's verification script here")

CANONICALIZE = """
require(process.argv[1]);
const docs = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(docs.map((text) => globalThis.disputesChain.canonicalize(JSON.parse(text)))));
"""
VERIFY = """
require(process.argv[1]);
const chain = JSON.parse(require("fs").readFileSync(0, "utf8"));
globalThis.disputesChain.verifyChain(chain.case_id, chain.events).then((r) => process.stdout.write(JSON.stringify(r)));
"""


def node(script: str, payload: Any) -> Any:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", script, str(VERIFY_JS)],
        input=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        capture_output=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.decode("utf-8"))


# Text as the log may hold it: Chinese, astral characters (UTF-16 surrogate pairs sort differently
# from code points), controls that are escaped, quotes and backslashes.
texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.sampled_from(list('电水壶坏了退款商家\u2028\u2029\x00\x1f\x7f"\\/😀𝄞ｍ')),
    ),
    max_size=12,
)
numbers = st.one_of(
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 1e21, 1e-7, 123456789.125, -0.0, 5e-324, 1.7976931348623157e308, 100.0]),
)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
documents = st.lists(st.dictionaries(texts, values, max_size=5), min_size=50, max_size=50)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents)
def test_canonical_form_matches_rfc8785(docs: list[dict[str, Any]]) -> None:
    texts_in = [json.dumps(doc, ensure_ascii=False) for doc in docs]
    got = node(CANONICALIZE, texts_in)
    assert got == [rfc8785.dumps(doc).decode("utf-8") for doc in docs]


def test_known_forms() -> None:
    docs: list[dict[str, Any]] = [
        {"b": 1, "a": "电", "é": [True, None], "😀": 1, "\ufb33": 2},
        {"numbers": [1e21, 1e-7, 0.1, -0.0, 333333333.3333333, 29900]},
        {"text": 'tab\there\nnew \u2028 \x01 "q" \\'},
    ]
    got = node(CANONICALIZE, [json.dumps(d, ensure_ascii=False) for d in docs])
    assert got == [rfc8785.dumps(d).decode("utf-8") for d in docs]
    assert got[1] == '{"numbers":[1e+21,1e-7,0.1,0,333333333.3333333,29900]}'


@pytest.fixture
def service(db_url: str) -> Iterator[CaseService]:
    made = make_clocked_service(db_url)
    yield made
    made.db.dispose()


def stored_chain(service: CaseService, case_id: str) -> dict[str, Any]:
    with service.db.read() as session:
        rows = session.execute(EVENTS.select().where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq)).all()
    return {
        "case_id": case_id,
        "events": [{"seq": r.seq, "body": r.body, "prev_hash": r.prev_hash, "hash": r.hash} for r in rows],
    }


def test_the_walk_accepts_the_engines_chain_and_names_the_first_break(service: CaseService) -> None:
    case = service.file(actor=CONSUMER, new_case=new_case(subject="电水壶两天就坏了 😀", description="\u2028 第二行"))
    service.execute(actor=MEDIATOR, case_id=case.id, name="assign")
    service.execute(actor=MERCHANT, case_id=case.id, name="respond", data={"statement": "已检测 ok"})
    chain = stored_chain(service, case.id)
    assert len(chain["events"]) >= 5
    result = node(VERIFY, chain)
    assert result["ok"] is True and result["count"] == len(chain["events"])
    assert result["head"] == chain["events"][-1]["hash"]
    # One byte of the third body changed: the walk stops there, whether the change alters what
    # the body says or only how it is written.
    tampered = json.loads(json.dumps(chain))
    tampered["events"][2]["body"] = tampered["events"][2]["body"].replace('"at":"2026', '"at":"2027', 1)
    assert node(VERIFY, tampered) == {"ok": False, "seq": 3, "reason": "hash"}
    spaced = json.loads(json.dumps(chain))
    spaced["events"][2]["body"] = spaced["events"][2]["body"].replace('"seq":3', '"seq": 3', 1)
    assert node(VERIFY, spaced) == {"ok": False, "seq": 3, "reason": "altered"}
    # A body that is no longer JSON, a dropped event, a relinked event.
    broken = json.loads(json.dumps(chain))
    broken["events"][1]["body"] = broken["events"][1]["body"][:-1]
    assert node(VERIFY, broken) == {"ok": False, "seq": 2, "reason": "unreadable"}
    dropped = json.loads(json.dumps(chain))
    del dropped["events"][3]
    assert node(VERIFY, dropped)["seq"] == 4
    relinked = json.loads(json.dumps(chain))
    relinked["events"][4]["prev_hash"] = "1" * 64
    assert node(VERIFY, relinked) == {"ok": False, "seq": 5, "reason": "link"}
