"""What the API's schemas share: the field rules (free text, identifiers, currencies), strict
request models (no unknown fields: no mass assignment), money, and the health answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from workflow.categories import CATEGORY_ID_PATTERN
from workflow.currency import check_currency
from workflow.text import IDENTIFIER_MAX, TEXT_MAX, check_free_text, normalise_identifier

DesiredOutcome = Literal["refund", "partial_refund", "replacement", "repair", "compensation", "apology", "other"]


# The field rules are workflow/text.py's (the domain applies the same ones); the patterns
# below say the gist of them in the document, for clients and fuzzers: what a pattern
# refuses is always refused, and the validators refuse a little more (format characters
# beyond the common ones, unassigned code points, blank text).
#
# Free text: no control characters other than tab and newlines, no bidi embedding,
# override or isolate controls; kept as written.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"


TEXT_RULES = (
    "Free text, kept as written: no control characters other than tab and newlines, no bidi embedding, "
    "override or isolate controls, no unpaired surrogates"
)


# Identifiers: no whitespace, controls, or invisible characters; normalised to NFKC.
IDENTIFIER_PATTERN = r"^[^\s\x00-\x1f\x7f-\xa0\xad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]+$"


IDENTIFIER_RULES = (
    'An identifier: normalised to Unicode NFKC (full-width "ｍ-1001" is stored as "m-1001"), then 1 to {limit} '
    "letters, marks, numbers, punctuation or symbols; whitespace, control and format characters (zero-width "
    "spaces, bidi controls), invisible fillers and unassigned code points are refused with 422"
)


def _checked_text(required: bool) -> Any:
    # The field's own max_length caps the length first; TEXT_MAX is the longest any field allows.
    return AfterValidator(lambda value: check_free_text(value, required=required, limit=TEXT_MAX))


def text(min_length: int = 0, max_length: int = 20_000, *, description: str = "", **kwargs: Any) -> Any:
    """A free-text field (the validator is attached by :data:`Text` / :data:`RequiredText`)."""
    rules = f"{TEXT_RULES}; {'at least one visible character, ' if min_length else ''}at most {max_length} characters."
    return Field(
        min_length=min_length,
        max_length=max_length,
        pattern=TEXT_PATTERN,
        description=f"{description} {rules}".strip(),
        **kwargs,
    )


# Annotate a field `RequiredText = text(1, N)` for text that must say something (blank is
# refused), `Text = text(0, N)` for optional text.
RequiredText = Annotated[str, _checked_text(required=True)]


Text = Annotated[str, _checked_text(required=False)]


def identifier_field(
    *, limit: int = IDENTIFIER_MAX, description: str = "", pattern: str | None = None, **kwargs: Any
) -> Any:
    """An identifier field: the pattern in the document, the full rule and NFKC by :data:`Identifier`."""
    rules = IDENTIFIER_RULES.format(limit=limit)
    # The length is checked again after normalisation (NFKC may lengthen a string); the
    # schema's cap is on what the client sends.
    return Field(
        min_length=1,
        max_length=limit,
        pattern=pattern or IDENTIFIER_PATTERN,
        description=f"{description} {rules}.".strip(),
        **kwargs,
    )


def identifier_query(description: str) -> Any:
    """A query parameter naming something: the identifier rule (a look-alike finds the same rows)."""
    return Query(
        min_length=1,
        max_length=IDENTIFIER_MAX,
        pattern=IDENTIFIER_PATTERN,
        description=f"{description} {IDENTIFIER_RULES.format(limit=IDENTIFIER_MAX)}.",
    )


Identifier = Annotated[str, AfterValidator(normalise_identifier)]
# A complaint category: which ids exist is the desk's (desk.yaml ``categories``, else the engine's
# seven), checked by the case service; the schema only knows an id's form.
CategoryId = Annotated[
    str,
    Field(
        pattern=CATEGORY_ID_PATTERN,
        max_length=48,
        description="One of the desk's categories (desk.yaml `categories`; by default product_quality, "
        "counterfeit, not_received, not_as_described, after_sales, false_advertising, other).",
        examples=["product_quality"],
    ),
]


Currency = Annotated[str, AfterValidator(check_currency)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(Strict):
    amount: int = Field(ge=0, le=10**12, strict=True, description="Amount in minor units (fen, cents); never a float.")
    currency: Currency = Field(
        pattern=r"^[A-Z]{3}$",
        examples=["CNY"],
        description="ISO 4217 code in capitals (a currency in use; not XXX, XTS, metals or bond units).",
    )


class MoneyPublic(BaseModel):
    """Money as a case records it (responses: what was stored is shown, never re-judged)."""

    amount: int = Field(description="Amount in minor units (fen, cents); never a float.")
    currency: str = Field(description="ISO 4217 code.", examples=["CNY"])


class Health(BaseModel):
    status: str
    database: str | None = None
    policies: str | None = None
    outbox_depth: int | None = Field(
        default=None, description="Notifications not yet delivered: outbox rows to fan out and pending deliveries."
    )
