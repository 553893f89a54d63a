"""The case page both parties use, the actions its forms post, and evidence up- and download."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from console import timeline
from console.evidence import PREVIEW_DOCUMENTS, PREVIEW_IMAGES, PREVIEW_POLICY, shown_inline
from console.formatting import major_to_minor
from console.pdf_preview import first_page_png
from console.views import case_view
from console.web import PageContext, form_actor, page_context, render, see_other, sign_in_redirect
from workflow.errors import (
    ConflictError,
    DisputeError,
    InvalidCommandError,
    NotFoundError,
    PolicyDeniedError,
    TransitionNotAllowedError,
)
from workflow.model import Actor, Evidence

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]

# The form fields each action's form sends (besides version and the CSRF token).
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "comment": ("body", "internal"),
    "respond": ("statement",),
    "propose_offer": ("amount", "currency", "terms"),
    "accept_offer": ("offer_id",),
    "reject_offer": ("offer_id",),
    "provide_info": ("request_id", "answer"),
    "rate": ("score", "comment"),
    "submit_evidence": (),
    "accept_claim": (),
    "withdraw": ("reason",),
    "reopen": ("reason",),
    # The mediator's workbench.
    "assign": (),
    "start_mediation": (),
    "request_info": ("party", "question"),
    "escalate": ("reason",),
    "settle": (),
    "close": (),
    "reject": ("reason",),
    "rule": ("decision", "awarded_amount", "reason", "citations"),
}
STATUS_OF = {PolicyDeniedError: 403, TransitionNotAllowedError: 409, InvalidCommandError: 422}


async def form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    # A ruling's citations: one checkbox per rulebook entry, kept as one comma-separated value.
    cited = [value for value in form.getlist("citations") if isinstance(value, str)]
    if cited:
        values["citations"] = ",".join(cited)
    return values


Form_ = Annotated[dict[str, str], Depends(form_values)]


def case_page(
    ctx: PageContext,
    actor: Actor,
    case_id: str,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    view = case_view(ctx.engine, actor, case_id)
    return render(
        ctx,
        "case.html",
        status_code=status_code,
        notice=notice,
        problem=problem,
        view=view,
        typed=typed or {},
        history_lines=timeline.history(view.events, actor, ctx.fmt),
        message_lines=timeline.messages(ctx.engine, view.messages, actor, ctx.fmt),
        preview_images=PREVIEW_IMAGES,
        preview_documents=PREVIEW_DOCUMENTS,
    )


@router.get("/cases/{case_id}")
def show_case(ctx: Context, case_id: str, notice: str | None = None, seen: str = "") -> Response:
    """The case page; also its live refresh. The page polls with ``seen`` (the version it shows,
    console.js holds the poll while a form on it is being filled in): 204 while the case is
    at that version, else the fresh case swapped in place. Every change to a case, by a person
    or a timer, is an event that moves its version on. A plain GET may send ``If-None-Match``
    with the ``ETag`` it got (304 while unchanged)."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    case = ctx.engine.cases.get(actor=ctx.actor, case_id=case_id)
    etag = f'"case-{case.id}-{case.version}-{ctx.language}"'
    if (seen and seen == str(case.version)) or ctx.request.headers.get("if-none-match") == etag:
        return Response(status_code=204 if seen else 304, headers={"ETag": etag})
    response = case_page(ctx, ctx.actor, case_id, notice=notice)
    response.headers["ETag"] = etag
    return response


def _command_data(name: str, values: dict[str, str], currency: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field_name in ACTION_FIELDS[name]:
        value = values.get(field_name, "").strip()
        if field_name == "reason":
            continue
        if field_name == "amount":
            try:
                data["amount"] = major_to_minor(value, values.get("currency") or currency)
            except (ValueError, KeyError):
                raise InvalidCommandError(f"{value!r} is not an amount of money", field="amount") from None
        elif field_name == "awarded_amount":
            if value:  # only a partial ruling names an amount; the others are fixed
                try:
                    data["awarded_amount"] = major_to_minor(value, currency)
                except (ValueError, KeyError):
                    raise InvalidCommandError(f"{value!r} is not an amount of money", field="awarded_amount") from None
        elif field_name == "internal":
            if value == "on":  # a checkbox: an internal note, for the desk only
                data["internal"] = True
        elif field_name == "citations":
            cited = [entry for entry in re.split(r"[,\s]+", value) if entry]
            if cited:
                data["citations"] = cited
        elif field_name == "score":
            data["score"] = int(value) if value.isdigit() else value
        else:
            data[field_name] = value
    return data


@router.post("/cases/{case_id}/act/{name}")
def act(ctx: Context, case_id: str, name: str, values: Form_) -> Response:
    """One action or trigger from a case page's form, with the version the page was read at."""
    actor = form_actor(ctx, values.get("csrf_token"))
    if isinstance(actor, Response):
        return actor
    if name not in ACTION_FIELDS:
        raise NotFoundError("action", name)
    typed = {name: values}
    version_text = values.get("version", "")
    if not version_text.isdigit():
        return case_page(ctx, actor, case_id, status_code=422, problem="the form has no version", typed=typed)
    case = ctx.engine.cases.get(actor=actor, case_id=case_id)
    try:
        ctx.engine.cases.execute(
            actor=actor,
            case_id=case_id,
            name=name,
            data=_command_data(name, values, case.currency),
            reason=values.get("reason", "").strip(),
            expected_version=int(version_text),
        )
    except ConflictError:
        return case_page(ctx, actor, case_id, status_code=412, notice="stale", typed=typed)
    except NotFoundError:
        raise
    except DisputeError as refused:
        status_code = next((code for kind, code in STATUS_OF.items() if isinstance(refused, kind)), 409)
        return case_page(ctx, actor, case_id, status_code=status_code, problem=str(refused), typed=typed)
    if not _still_visible(ctx, actor, case_id):
        # The command took the case out of the caller's sight (a senior's ruling on an escalation
        # they do not hold): back to their start page rather than a "not found".
        if ctx.htmx:
            return Response(status_code=204, headers={"HX-Redirect": "/console/?notice=done"})
        return see_other("/console/", "done")
    if ctx.htmx:
        return case_page(ctx, actor, case_id, notice="done")
    return see_other(f"/console/cases/{case_id}", "done")


def _still_visible(ctx: PageContext, actor: Actor, case_id: str) -> bool:
    try:
        ctx.engine.cases.get(actor=actor, case_id=case_id)
    except NotFoundError:
        return False
    return True


@router.post("/cases/{case_id}/evidence")
def upload_evidence(
    ctx: Context,
    case_id: str,
    file: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    """Add a file as a draft (submitted later with the submit button, as in the API)."""
    actor = form_actor(ctx, csrf_token)
    if isinstance(actor, Response):
        return actor
    typed = {"add_evidence": {"description": description}}
    problem = add_file(ctx, actor, case_id, file, description, int(version) if version.isdigit() else None)
    if problem == "stale":
        return case_page(ctx, actor, case_id, status_code=412, notice="stale", typed=typed)
    if problem is not None:
        return case_page(ctx, actor, case_id, status_code=422, problem=problem, typed=typed)
    if ctx.htmx:
        return case_page(ctx, actor, case_id, notice="evidence_added")
    return see_other(f"/console/cases/{case_id}", "evidence_added")


def add_file(
    ctx: PageContext, actor: Actor, case_id: str, file: UploadFile, description: str, version: int | None
) -> str | None:
    """Store ``file`` as a draft of ``actor``'s evidence; the reason it was refused, or None."""
    settings = ctx.engine.settings
    media_type = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
    if media_type not in settings.upload_media_types:
        return f"{media_type} is not accepted; use one of {', '.join(settings.upload_media_types)}"
    content = file.file.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        return f"evidence files are limited to {settings.max_upload_bytes} bytes"
    if not content:
        return "the evidence file is empty"
    try:
        ctx.engine.cases.add_evidence(
            actor=actor,
            case_id=case_id,
            content=content,
            media_type=media_type,
            filename=(file.filename or "evidence")[:255],
            description=description.strip(),
            expected_version=version,
        )
    except ConflictError:
        return "stale"
    except NotFoundError:
        raise
    except DisputeError as refused:
        return str(refused)
    return None


@router.get("/cases/{case_id}/evidence/{evidence_id}")
def download_evidence(ctx: Context, case_id: str, evidence_id: str) -> Response:
    """Evidence is always a download (``attachment``, octet-stream): never shown inline."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    item, content = ctx.engine.cases.evidence_content(actor=ctx.actor, case_id=case_id, evidence_id=evidence_id)
    return _download(item, content)


@router.get("/cases/{case_id}/evidence/{evidence_id}/preview")
def preview_evidence(ctx: Context, case_id: str, evidence_id: str) -> Response:
    """An image or PDF whose bytes match its declared type, inline and sandboxed (the
    workbench's ``<img>`` and ``<iframe sandbox>`` load it); any other file stays a download."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    item, content = ctx.engine.cases.evidence_content(actor=ctx.actor, case_id=case_id, evidence_id=evidence_id)
    if not shown_inline(item.media_type, content):
        return _download(item, content)
    media_type, names = item.media_type, _file_names(item)
    if item.media_type in PREVIEW_DOCUMENTS:
        # A PDF is shown as a picture of its first page, drawn in a limited child process
        # (console/pdf_preview.py): the browser never parses the file.
        drawn = first_page_png(content)
        if drawn is None:
            return _download(item, content)
        content, media_type, names = drawn, "image/png", f'filename="{item.evidence_id}-page-1.png"'
    headers = {
        "Content-Disposition": f"inline; {names}",
        # The console's middleware keeps these (a page of its own would get DENY and no frames).
        "Content-Security-Policy": PREVIEW_POLICY,
        "X-Frame-Options": "SAMEORIGIN",
    }
    return Response(content, media_type=media_type, headers=headers)


def _file_names(item: Evidence) -> str:
    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in item.filename)
    return f"filename=\"{fallback or item.evidence_id}\"; filename*=UTF-8''{quote(item.filename)}"


def _download(item: Evidence, content: bytes) -> Response:
    disposition = f"attachment; {_file_names(item)}"
    return Response(content, media_type="application/octet-stream", headers={"Content-Disposition": disposition})
