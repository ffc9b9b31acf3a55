"""Delivery: approved work handed over the way the package says, once per item and method.

Production tells `delivery.courier` to deliver one approved version of one item by one
method (an email with the files attached, a signed webhook, a folder export); the courier
records the delivery under the command's idempotency key before it acts, does it at most
once per key (an attempt whose outcome a crash made unknown is never repeated blindly: see
the module), retries temporary failures with backoff and answers `ItemDelivered` (said
again on every ask), `DeliveryFailing` (a person is alerted) or, while it keeps a delivery
waiting, `DeliveryKept` (so production stops asking; added in contract version 3).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts.base import Event, Message
from contracts.clients import ClientInfo
from contracts.packages import DeliveryMethod

CONTRACT_VERSION = 3


class DeliveryMessage(Message):
    contract_version: int = CONTRACT_VERSION


class DeliveryEvent(Event):
    contract_version: int = CONTRACT_VERSION


class DeliverItem(DeliveryMessage):
    """Production -> delivery: hand over this approved version by `method`."""

    project_id: uuid.UUID
    item_id: uuid.UUID
    version: int
    #: "<item>:<version>:<method>": one delivery per item, version and method.
    idempotency_key: str
    method: DeliveryMethod
    client: ClientInfo
    title: str
    type: str
    channel: str
    text: str
    html: str = ""


class ItemDelivered(DeliveryEvent):
    project_id: uuid.UUID
    item_id: uuid.UUID
    version: int
    method: DeliveryMethod
    delivered_at: datetime
    #: What the other side said (an SMTP reply, the webhook's status and body's start, a path).
    receipt: str = ""


class DeliveryKept(DeliveryEvent):
    """The courier has the delivery recorded and keeps it for now (a client on hold, a retry
    waiting, an attempt under way): what becomes of it is announced (`ItemDelivered`,
    `DeliveryFailing`, `DeliveriesCancelled`) without being asked again. Said on each
    `DeliverItem` about a delivery that is neither made nor failing."""

    project_id: uuid.UUID
    item_id: uuid.UUID
    version: int
    method: DeliveryMethod
    #: The delivery's state at the courier ("queued", "sending", "retrying").
    state: str


class DeliveryFailing(DeliveryEvent):
    """Attempts keep failing (or failed for good): a person is alerted by the courier."""

    project_id: uuid.UUID
    item_id: uuid.UUID
    version: int
    method: DeliveryMethod
    attempts: int
    error: str
    permanent: bool = False


class CancelDeliveries(DeliveryMessage):
    """Production -> delivery (a cancelled project): cancel every delivery not yet made."""

    project_id: uuid.UUID
    idempotency_key: str
    reason: str


class DeliveriesCancelled(DeliveryEvent):
    project_id: uuid.UUID


class HoldDeliveries(DeliveryMessage):
    """Orchestration's hold policy -> delivery: a client owes an invoice overdue past the
    threshold: nothing more is delivered to it until `ReleaseDeliveries` (deliveries asked for
    meanwhile are recorded and wait). May repeat."""

    client_ref: uuid.UUID
    idempotency_key: str
    reason: str


class ReleaseDeliveries(DeliveryMessage):
    """Orchestration's hold policy -> delivery: the client paid: what waits goes out. May repeat."""

    client_ref: uuid.UUID
    idempotency_key: str
    reason: str = ""


class DeliveriesHeld(DeliveryEvent):
    """A client's deliveries are on hold (said after every `HoldDeliveries`)."""

    client_ref: uuid.UUID
    #: Its deliveries recorded and not made yet.
    waiting: int


class DeliveriesReleased(DeliveryEvent):
    """A client's hold was released (said after every `ReleaseDeliveries`)."""

    client_ref: uuid.UUID
    waiting: int
