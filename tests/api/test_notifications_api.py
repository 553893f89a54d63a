"""The notification routes over HTTP: webhook endpoints (admins; merchants for their own
merchant id), failed deliveries, the inbox (unread count, list, mark read), contact settings,
and the outbox's depth in /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Callable

from notify.rules import default_rules
from outbox.dispatch import DispatchConfig, Dispatcher
from outbox.hook import OutboxHook
from tests.support.api import Api, file_minimal


def _with_outbox(api: Api) -> Api:
    hook = OutboxHook(default_rules())
    api.service.on_written = (hook,)
    api.engine.outbox = hook
    return api


def _dispatch(api: Api) -> None:
    dispatcher = Dispatcher(api.service, api.engine.notification_rules, DispatchConfig(timeout_seconds=1))
    try:
        dispatcher.run_once()
    finally:
        dispatcher.close()


def test_endpoints_over_http(api_factory: Callable[..., Api]) -> None:
    api = _with_outbox(api_factory())
    admin = api.token("adm-1", "admin")
    merchant = api.token("mu-1", "merchant", "m-1")
    other = api.token("mu-2", "merchant", "m-2")
    consumer = api.token("c-1", "consumer")
    created = api.client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "event_types": ["case.filed"]}, headers=merchant
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["merchant_id"] == "m-1"
    assert created.headers["location"] == f"/v1/webhooks/{body['id']}"
    endpoint = f"/v1/webhooks/{body['id']}"
    assert api.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=consumer).status_code == 403
    refused = api.client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "merchant_id": "m-2"}, headers=merchant
    )
    assert refused.status_code == 403
    bad = api.client.post("/v1/webhooks", json={"url": "ftp://example.com/x"}, headers=admin)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert (
        api.client.post("/v1/webhooks", json={"url": "http://x.example", "extra": 1}, headers=admin).status_code == 422
    )
    assert api.client.get(endpoint, headers=other).status_code == 404
    assert [e["id"] for e in api.client.get("/v1/webhooks", headers=admin).json()["data"]] == [body["id"]]
    assert api.client.get("/v1/webhooks", headers=other).json()["data"] == []
    patched = api.client.patch(endpoint, json={"enabled": False}, headers=merchant)
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    rotated = api.client.post(f"{endpoint}/rotate-secret", headers=merchant)
    assert rotated.status_code == 200 and rotated.json()["secret"] != body["secret"]
    assert api.client.get(f"{endpoint}/failed", headers=merchant).json() == {"data": []}
    assert api.client.post(f"{endpoint}/resend", json={"ids": [12345]}, headers=merchant).status_code == 404
    assert api.client.post(f"{endpoint}/resend", json={}, headers=merchant).json() == {"queued": 0}
    assert api.client.delete(endpoint, headers=other).status_code == 404
    assert api.client.delete(endpoint, headers=merchant).status_code == 204
    assert api.client.get(endpoint, headers=admin).status_code == 404


def test_inbox_and_contact_over_http(api_factory: Callable[..., Api]) -> None:
    api = _with_outbox(api_factory())
    consumer = api.token("c-1", "consumer")
    case = file_minimal(api)
    assert api.client.get("/readyz").json()["outbox_depth"] == 1
    _dispatch(api)
    assert api.client.get("/readyz").json()["outbox_depth"] == 0
    assert api.client.get("/v1/notifications/unread-count", headers=consumer).json() == {"unread": 1}
    listed = api.client.get("/v1/notifications", headers=consumer).json()
    (notice,) = listed["data"]
    assert notice["kind"] == "acknowledgement" and case["id"] in notice["subject"] and not notice["read"]
    assert api.client.get("/v1/notifications/unread-count", headers=api.token("c-2", "consumer")).json()["unread"] == 0
    assert (
        api.client.post(
            "/v1/notifications/read", json={"ids": [notice["id"]]}, headers=api.token("c-2", "consumer")
        ).status_code
        == 404
    )
    marked = api.client.post("/v1/notifications/read", json={"ids": [notice["id"]]}, headers=consumer)
    assert marked.json() == {"marked": 1}
    assert api.client.get("/v1/notifications?unread=true", headers=consumer).json()["data"] == []

    assert api.client.put("/v1/notifications/contact", json={"language": "fr"}, headers=consumer).status_code == 422
    assert api.client.put("/v1/notifications/contact", json={"email": "x y"}, headers=consumer).status_code == 422
    put = api.client.put(
        "/v1/notifications/contact",
        json={"email": "li@example.com", "language": "zh-CN", "email_kinds": ["reminder"], "digest": False},
        headers=consumer,
    )
    assert put.status_code == 200, put.text
    assert api.client.get("/v1/notifications/contact", headers=consumer).json() == {
        "email": "li@example.com",
        "language": "zh-CN",
        "email_kinds": ["reminder"],
        "digest": False,
    }
    # The inbox now speaks the caller's language.
    (again,) = api.client.get("/v1/notifications", headers=consumer).json()["data"]
    assert again["subject"].startswith("投诉已受理")
    metrics = api.client.get("/metrics").text
    assert "disputes_outbox_depth 0.0" in metrics and "disputes_outbox_oldest_undelivered_seconds" in metrics
