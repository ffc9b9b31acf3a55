"""Which VAT an invoice carries, from the agency's country and the client's. Pure.

The standard rates of the EU member states (and of a few neighbours, for an agency based
there) as percentages; `overrides` (a setting) replaces or adds rates without a release when a
country changes its rate. The rules, for services between businesses (Directive 2006/112/EC):

- the client in the agency's own country: domestic, the agency country's rate;
- agency and client in two EU countries, the client with a VAT number (`ClientInfo.tax_id`):
  the reverse charge (Art. 44 and 196): 0 %, the note "Reverse charge: VAT to be accounted for
  by the recipient" (Art. 226(11a)) and both VAT numbers on the invoice;
- the client in another EU country without a VAT number (a consumer): the agency's rate
  (Art. 45, the supplier's place);
- the client outside the agency's VAT area (outside the EU for an EU agency; any other
  country for an agency outside the EU): no VAT, with a note saying why.

A late fee is compensation, not the price of a supply: no VAT (`late_fee_tax`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

#: The EU's standard VAT rates in percent (as of 2025; `overrides` for any change since).
EU_STANDARD_RATES: dict[str, Decimal] = {
    code: Decimal(rate)
    for code, rate in {
        "AT": "20",
        "BE": "21",
        "BG": "20",
        "CY": "19",
        "CZ": "21",
        "DE": "19",
        "DK": "25",
        "EE": "24",
        "ES": "21",
        "FI": "25.5",
        "FR": "20",
        "GR": "24",
        "HR": "25",
        "HU": "27",
        "IE": "23",
        "IT": "22",
        "LT": "21",
        "LU": "17",
        "LV": "21",
        "MT": "18",
        "NL": "21",
        "PL": "23",
        "PT": "23",
        "RO": "21",
        "SE": "25",
        "SI": "22",
        "SK": "23",
    }.items()
}
#: Standard rates of countries outside the EU an agency may be based in.
OTHER_STANDARD_RATES: dict[str, Decimal] = {
    code: Decimal(rate)
    for code, rate in {"GB": "20", "CH": "8.1", "NO": "25", "IS": "24", "LI": "8.1", "AU": "10", "NZ": "15"}.items()
}
EU = frozenset(EU_STANDARD_RATES)

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 and 226(11a) of Council Directive 2006/112/EC)."
)
OUTSIDE_EU_NOTE = (
    "Not subject to EU VAT: the place of supply is outside the EU (Art. 44 and 59 of Council Directive 2006/112/EC)."
)
LATE_FEE_NOTE = "Late payment fee: compensation for late payment, not subject to VAT."

TaxKind = Literal["domestic", "reverse_charge", "eu_consumer", "outside", "none"]


@dataclass(frozen=True)
class Tax:
    """The VAT of one invoice: its rate in percent, what rule chose it, and the note it prints."""

    rate: Decimal
    kind: TaxKind
    note: str = ""

    @property
    def reverse_charge(self) -> bool:
        return self.kind == "reverse_charge"


def rates(overrides: Mapping[str, Decimal] | None = None) -> dict[str, Decimal]:
    """Every known standard rate, `overrides` applied (country code -> percent)."""
    merged = {**EU_STANDARD_RATES, **OTHER_STANDARD_RATES}
    for country, rate in (overrides or {}).items():
        merged[country.upper()] = Decimal(rate)
    return merged


def tax_for(
    *,
    agency_country: str,
    client_country: str,
    client_tax_id: str | None,
    overrides: Mapping[str, Decimal] | None = None,
) -> Tax:
    """The VAT of an invoice from an agency in `agency_country` to a client in `client_country`."""
    table = rates(overrides)
    agency = agency_country.upper()
    client = client_country.upper()
    home_rate = table.get(agency, Decimal(0))
    if client == agency:
        return Tax(home_rate, "domestic")
    if agency in EU and client in EU:
        if client_tax_id and client_tax_id.strip():
            return Tax(Decimal(0), "reverse_charge", REVERSE_CHARGE_NOTE)
        return Tax(home_rate, "eu_consumer")
    if agency in EU:
        return Tax(Decimal(0), "outside", OUTSIDE_EU_NOTE)
    return Tax(Decimal(0), "outside", f"No VAT charged: the service is supplied to a client outside {agency}.")


def late_fee_tax() -> Tax:
    return Tax(Decimal(0), "none", LATE_FEE_NOTE)
