"""ISO 4217 currency codes a claim may be in.

The list is ISO 4217's, as the ``pycountry`` package ships it (from Debian's iso-codes,
which follows the ISO 4217 maintenance agency's amendments); updating the package updates
the list. Codes are upper-case as ISO writes them: "cny" is refused, not corrected, so that
what a client sent is what the case records. Left out are the codes that are not money a
consumer pays with: precious metals, bond-market units, the IMF's special drawing right and
the ADB unit of account, the testing code XTS and XXX ("no currency").
"""

from __future__ import annotations

from functools import cache

import pycountry

NOT_MONEY = frozenset(
    {
        "XAG",
        "XAU",
        "XPD",
        "XPT",  # silver, gold, palladium, platinum
        "XBA",
        "XBB",
        "XBC",
        "XBD",  # European bond-market units
        "XDR",
        "XSU",
        "XUA",
        "XAD",  # IMF SDR, SUCRE, ADB unit of account, Arab accounting dinar
        "XTS",
        "XXX",  # reserved for testing; "no currency"
    }
)


@cache
def currencies() -> frozenset[str]:
    """Every accepted code."""
    return frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_MONEY


def currency_problem(code: str) -> str | None:
    """Why ``code`` is not an accepted ISO 4217 code, or None."""
    if code in currencies():
        return None
    if code.upper() in currencies():
        return f"{code!r} must be written in capitals: {code.upper()!r}"
    return f"{code!r} is not an ISO 4217 currency code (such as CNY, USD, EUR)"


def check_currency(code: str) -> str:
    """``code`` unchanged, or ValueError saying why it is refused."""
    problem = currency_problem(code)
    if problem is not None:
        raise ValueError(problem)
    return code
