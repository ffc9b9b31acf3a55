"""Which VAT an invoice carries: domestic, reverse charge, EU consumer, outside the EU, overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aicmo_actors.billing.tax import EU, EU_STANDARD_RATES, REVERSE_CHARGE_NOTE, late_fee_tax, tax_for

D = Decimal


@pytest.mark.parametrize(
    ("agency", "client", "tax_id", "rate", "kind", "note"),
    [
        ("DE", "DE", None, D(19), "domestic", ""),
        ("DE", "DE", "DE999999999", D(19), "domestic", ""),
        ("FR", "FR", None, D(20), "domestic", ""),
        (
            "DE",
            "FR",
            "FR40303265045",
            D(0),
            "reverse_charge",
            "Reverse charge: VAT to be accounted for by the recipient",
        ),
        ("DE", "FR", None, D(19), "eu_consumer", ""),
        ("DE", "FR", "  ", D(19), "eu_consumer", ""),
        ("DE", "US", None, D(0), "outside", "outside the EU"),
        ("DE", "GB", "GB123456789", D(0), "outside", "Art. 44"),
        ("DE", "CH", None, D(0), "outside", "outside the EU"),
        ("GB", "GB", None, D(20), "domestic", ""),
        ("GB", "DE", "DE1", D(0), "outside", "outside GB"),
        ("CH", "CH", None, D("8.1"), "domestic", ""),
        ("NO", "NO", None, D(25), "domestic", ""),
        ("US", "US", None, D(0), "domestic", ""),
        ("HU", "HU", None, D(27), "domestic", ""),
        ("LU", "lu", None, D(17), "domestic", ""),
    ],
)
def test_the_vat_of_an_invoice(
    agency: str, client: str, tax_id: str | None, rate: Decimal, kind: str, note: str
) -> None:
    tax = tax_for(agency_country=agency, client_country=client, client_tax_id=tax_id)
    assert (tax.rate, tax.kind) == (rate, kind)
    assert note in tax.note


def test_overrides_replace_or_add_rates() -> None:
    assert tax_for(agency_country="DE", client_country="DE", client_tax_id=None, overrides={"DE": D(16)}).rate == D(16)
    assert tax_for(
        agency_country="US", client_country="US", client_tax_id=None, overrides={"us": D("8.875")}
    ).rate == D("8.875")


def test_the_table_has_every_member_state() -> None:
    assert len(EU) == 27 and all(D(0) < r < D(30) for r in EU_STANDARD_RATES.values())
    assert "226(11a)" in REVERSE_CHARGE_NOTE and "2006/112/EC" in REVERSE_CHARGE_NOTE
    assert tax_for(agency_country="DE", client_country="AT", client_tax_id="ATU1").reverse_charge


def test_late_fees_carry_no_vat() -> None:
    assert late_fee_tax().rate == 0 and "not subject to VAT" in late_fee_tax().note
