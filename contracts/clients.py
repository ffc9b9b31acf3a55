"""Who a client is, as every module after the deal sees it (carried in messages; each module
keeps the copy it needs in its own tables)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

CONTRACT_VERSION = 3


class ClientInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    contract_version: int = CONTRACT_VERSION
    client_ref: uuid.UUID
    company: str
    contact_name: str | None = None
    contact_email: str
    #: IANA zone (business days, meeting times and due dates are the client's).
    timezone: str = "UTC"
    #: ISO 3166-1 alpha-2: whose public holidays are not business days.
    country: str = "US"
    billing_address: str = ""
    #: The client's language (ISO 639-1): drafts are written and checked (spelling) in it.
    language: str = "en"
    #: Where approved work is posted when the package delivers by webhook (signed, HMAC).
    webhook_url: str | None = None
    #: The client's VAT or tax number (an EU business's makes a cross-border invoice reverse-charge).
    tax_id: str | None = None
    #: Where invoices go (None: the contact's address).
    billing_email: str | None = None
