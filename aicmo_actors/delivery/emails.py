"""The delivery email: one per piece, to the client's contact, the piece's text in the body and
the piece attached as HTML, PDF and Word. Pure: the same inputs make the same bytes
(Message-ID and MIME boundaries come from the idempotency key, never at random).

Headers go through `gateways.mail_message.build_message` (header injection refused).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from aicmo_actors.delivery import documents, texts
from aicmo_actors.delivery.names import base_name
from aicmo_actors.gateways.mail_message import build_message, make_message_id
from contracts.clients import ClientInfo

#: (extension, MIME type, subtype) of each attachment, in order.
ATTACHMENTS = (
    ("html", "text", "html"),
    ("pdf", "application", "pdf"),
    ("docx", "application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
)


@dataclass(frozen=True)
class Letterhead:
    """Who delivery writes as."""

    mail_from: str
    agency_name: str

    @property
    def domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "localhost"


def delivery_email(
    head: Letterhead,
    client: ClientInfo,
    piece: documents.Piece,
    *,
    key: str,
    item_id: str,
    files: dict[str, bytes],
    now: datetime,
) -> EmailMessage:
    """The email that hands `piece` over (`files`: `documents.all_files(piece)`)."""
    message_id = make_message_id(head.domain, "delivery." + hashlib.sha256(key.encode()).hexdigest()[:32])
    name = client.contact_name
    message = build_message(
        from_address=head.mail_from,
        from_name=head.agency_name,
        to_address=client.contact_email,
        to_name=texts.one_line(name) if name else None,
        subject=texts.email_subject(client.company, piece.title, piece.type),
        text=texts.email_text(
            contact_name=name,
            agency=head.agency_name,
            title=piece.title,
            type_=piece.type,
            channel=piece.channel,
            text=piece.text,
        ),
        message_id=message_id,
        date=now,
    )
    base = base_name(piece.type, piece.title, item_id, piece.version)
    for extension, maintype, subtype in ATTACHMENTS:
        message.add_attachment(files[extension], maintype=maintype, subtype=subtype, filename=f"{base}.{extension}")
    # The email package would draw the multipart/mixed boundary at random.
    message.set_boundary("mixed." + "".join(c for c in message_id if c.isalnum())[:40])
    return message
