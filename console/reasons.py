"""The policies' reasons as a page shows them, in the page's language.

A disabled button or a refusal shows why, in the words of the policy that decided it: its
``@reason``, or on a Chinese page its ``@reason_zh`` (policies/loader.py; ``config check``
checks both). A refusal no policy decided ("no policy permits ..." with the permits that
would have allowed it) is said in the console's own words on a Chinese page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from console.i18n import translations
from policies.cedar import CedarAuthorizer
from runtime.engine import Engine

# The sentence policies/cedar.py gives when no policy decided (deny by default).
_NOTHING_PERMITS = re.compile(r"no policy permits \S+ for role \S+ in state \S+")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translated later"
    return message


NOTHING_PERMITS = N_("no policy permits this for your role in the case's current state")


def reasons_shown(engine: Engine, language: str, reasons: Iterable[str]) -> list[str]:
    """``reasons`` (a decision's) in ``language``, each once."""
    authorizer = engine.cases.authorizer
    chinese = language.startswith("zh")
    shown: list[str] = []
    for reason in reasons:
        if chinese and _NOTHING_PERMITS.fullmatch(reason):
            text = translations(language).gettext(NOTHING_PERMITS)
        elif isinstance(authorizer, CedarAuthorizer):
            text = authorizer.reason_in(reason, language)
        else:
            text = reason
        if text not in shown:
            shown.append(text)
    return shown
