"""The consumer's portal: their cases, filing a complaint (with the classifier's suggestion as
they type and evidence attached in the same form)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from cases.queries import decode_activity_cursor
from console.formatting import major_to_minor
from console.routes.case import add_file
from console.views import my_cases
from console.web import PageContext, form_actor, page_context, render, see_other, sign_in_redirect
from workflow.currency import currencies
from workflow.errors import DisputeError, InvalidCommandError
from workflow.model import NewCase

router = APIRouter()
Context = Annotated[PageContext, Depends(page_context)]
DESIRED_OUTCOMES = ("refund", "partial_refund", "replacement", "repair", "compensation", "apology", "other")
COMMON_CURRENCIES = ("CNY", "HKD", "USD", "EUR", "JPY")
SUGGEST_MAX = 20_000


@router.get("/cases")
def list_my_cases(ctx: Context, notice: str | None = None, cursor: str | None = None) -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    after = decode_activity_cursor(cursor) if cursor else None
    rows, next_cursor = my_cases(ctx.engine, ctx.actor, after=after)
    return render(ctx, "cases.html", notice=notice, rows=rows, next_cursor=next_cursor)


def _form_page(
    ctx: PageContext, *, status_code: int = 200, typed: dict[str, str] | None = None, **values: Any
) -> Response:
    return render(
        ctx,
        "new_case.html",
        status_code=status_code,
        typed=typed or {},
        categories=ctx.engine.cases.categories.ids,
        suggests=ctx.engine.triage.suggests,
        outcomes=DESIRED_OUTCOMES,
        currencies=COMMON_CURRENCIES,
        suggestion=None,
        **values,
    )


@router.get("/cases/new")
def new_case_form(ctx: Context) -> Response:
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    return _form_page(ctx)


@router.get("/classify")
def suggest_category(ctx: Context, subject: str = "", description: str = "") -> Response:
    """The classifier's suggestion for what the consumer typed so far, and the words that decided it."""
    if ctx.actor is None:
        return sign_in_redirect(ctx)
    suggestion = None
    if (subject.strip() or description.strip()) and ctx.engine.triage.suggests:
        suggestion = ctx.engine.triage.classifier.classify(subject[:SUGGEST_MAX], description[:SUGGEST_MAX])
    return render(ctx, "new_case.html", block="suggestion", suggestion=suggestion)


@router.post("/cases")
def file_complaint(
    ctx: Context,
    csrf_token: Annotated[str, Form()] = "",
    merchant_id: Annotated[str, Form()] = "",
    order_ref: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    currency: Annotated[str, Form()] = "CNY",
    desired_outcome: Annotated[str, Form()] = "refund",
    category: Annotated[str, Form()] = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """File the complaint, then attach each file as a draft of the consumer's evidence."""
    actor = form_actor(ctx, csrf_token)
    if isinstance(actor, Response):
        return actor
    typed = {
        "merchant_id": merchant_id,
        "order_ref": order_ref,
        "subject": subject,
        "description": description,
        "amount": amount,
        "currency": currency,
        "desired_outcome": desired_outcome,
        "category": category,
    }
    problems = []
    for name in ("merchant_id", "order_ref", "subject", "description", "amount"):
        if not typed[name].strip():
            problems.append(name)
    if currency not in currencies():
        problems.append("currency")
    if desired_outcome not in DESIRED_OUTCOMES:
        problems.append("desired_outcome")
    if category and category not in ctx.engine.cases.categories:
        problems.append("category")
    claim = 0
    if "amount" not in problems and "currency" not in problems:
        try:
            claim = major_to_minor(amount, currency)
        except ValueError:
            problems.append("amount")
    if problems:
        return _form_page(ctx, status_code=422, typed=typed, invalid=problems)
    try:
        case = ctx.engine.cases.file(
            actor=actor,
            new_case=NewCase(
                consumer_id=actor.id,
                merchant_id=merchant_id.strip(),
                category=category,
                subject=subject.strip(),
                description=description.strip(),
                order_ref=order_ref.strip(),
                claim_amount=claim,
                currency=currency,
                desired_outcome=desired_outcome,
            ),
        )
    except InvalidCommandError as refused:
        return _form_page(ctx, status_code=422, typed=typed, problem=str(refused), invalid=[refused.field or ""])
    except DisputeError as refused:
        return _form_page(ctx, status_code=403, typed=typed, problem=str(refused))
    files_refused = False
    for upload in files or []:
        if upload.filename:
            files_refused = add_file(ctx, actor, case.id, upload, "", None) is not None or files_refused
    return see_other(f"/console/cases/{case.id}", "filed_files_refused" if files_refused else "filed")
