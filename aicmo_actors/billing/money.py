"""Amounts of money: `Decimal` in a currency's minor units (ISO 4217). Pure.

Never a float: an amount typed by a person is read as text, refused when it has more decimals
than its currency (`12.345 EUR`), and every computed amount (a share, a tax, a fee) is rounded
half up to the currency's minor unit.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

#: Decimals of a currency's minor unit where it is not 2 (ISO 4217).
MINOR_UNITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}
#: The largest amount a person may type (far above any invoice).
AMOUNT_MAX = Decimal(10) ** 12
ZERO = Decimal(0)


class AmountError(ValueError):
    """An amount a person typed that cannot be money in its currency (one line, for people)."""


def decimals(currency: str) -> int:
    """The decimals of `currency`'s minor unit (2 unless ISO 4217 says otherwise)."""
    return MINOR_UNITS.get(currency.upper(), 2)


def unit(currency: str) -> Decimal:
    """The minor unit as a quantum: 0.01 for EUR, 1 for JPY, 0.001 for KWD."""
    return Decimal(1).scaleb(-decimals(currency))


def rounded(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up to `currency`'s minor unit."""
    return amount.quantize(unit(currency), rounding=ROUND_HALF_UP)


def parse_amount(text: str, currency: str, *, allow_zero: bool = False) -> Decimal:
    """An amount typed by a person ("1500", "1500.50"), exactly, in `currency`'s minor units."""
    written = text.strip()
    if not re.fullmatch(r"\d+(\.\d+)?", written):
        hint = " (no thousands separators, a dot for decimals)" if re.search(r"\d[,' ]\d", written) else ""
        raise AmountError(f"{text!r} is not an amount{hint}: write e.g. 1500 or 1500.50")
    try:
        amount = Decimal(written)
    except InvalidOperation:  # pragma: no cover - the pattern above is a decimal
        raise AmountError(f"{text!r} is not an amount") from None
    places = -int(amount.as_tuple().exponent)
    if places > decimals(currency):
        raise AmountError(
            f"{written} has more decimals than {currency} has ({decimals(currency)}): write {rounded(amount, currency)}"
        )
    if amount > AMOUNT_MAX:
        raise AmountError(f"{written} is too large")
    if amount == 0 and not allow_zero:
        raise AmountError("the amount must be more than 0")
    return rounded(amount, currency)


def to_decimal(stored: str | Decimal | int) -> Decimal:
    """An amount as stored (text) back to a `Decimal`."""
    return stored if isinstance(stored, Decimal) else Decimal(str(stored))


def shown(amount: Decimal, currency: str) -> str:
    """`2,500.00 EUR`, `-12.50 EUR`, `250,000 JPY`."""
    return f"{rounded(amount, currency):,.{decimals(currency)}f} {currency}"
