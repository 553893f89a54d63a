"""The mediator's queue: cases they can act on, most urgent clock first."""

from __future__ import annotations

from datetime import timedelta

from tests.support.api import Api, Party, file_case


def test_queue_orders_by_the_most_urgent_clock(api: Api) -> None:
    consumer = Party(api, "c-1", "consumer")
    mediator = Party(api, "med-1", "mediator")
    other = Party(api, "med-2", "mediator")
    first = file_case(api, consumer)  # filed: assignment clock, 2 business hours
    api.clock.advance(timedelta(minutes=30))
    second = file_case(api, consumer)
    mediator.move(first, "assign")  # now assigned: merchant_response clock, 48 h
    queue = mediator.get("/v1/queue")["data"]
    assert [item["case"]["id"] for item in queue] == [second, first]
    assert queue[0]["most_urgent"]["name"] == "assignment"
    assert queue[1]["most_urgent"]["name"] == "merchant_response"
    assert queue[0]["most_urgent"]["remaining_business_seconds"] == 2 * 3600
    # Another mediator sees the unassigned case only, not med-1's.
    assert [item["case"]["id"] for item in other.get("/v1/queue")["data"]] == [second]
    # Pages follow the cursor.
    page = mediator.get("/v1/queue?limit=1")
    assert [i["case"]["id"] for i in page["data"]] == [second] and page["next_cursor"]
    rest = api.client.get("/v1/queue", params={"limit": 1, "cursor": page["next_cursor"]}, headers=mediator.headers)
    assert [i["case"]["id"] for i in rest.json()["data"]] == [first]
