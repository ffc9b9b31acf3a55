"""`cam.classify.review.review_intent` on replies as clients write them, in English, German,
French and Spanish: with greetings, signatures and "Sent from my iPhone" (quotes are removed
before, by `strip_quoted`); and the whole path of a real email through the classifier and
`followup.unmatched_reply`, so a short "Approved, thanks" is offered to client review."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.cam.classify.review import own_words, review_intent
from aicmo_actors.cam.followup import unmatched_reply
from aicmo_actors.cam.lead_rules import HUMAN_REPLIES

APPROVALS = [
    "Approved, thanks",
    "approved",
    "Approved!\n\nSent from my iPhone",
    "Looks good, go ahead.",
    "Hi Bright team,\n\nlooks great, please publish.\n\nBest regards,\nAnn Lee\nHead of Marketing, Acme Logistics",
    "LGTM",
    "Yes",
    "All good from our side. Please go ahead.",
    "No changes needed, thanks!",
    "Perfect, thank you!\n\n--\nAnn Lee | Acme Logistics | +49 30 1234567",
    "We're happy with it.",
    "Passt so, bitte veröffentlichen.",
    "Hallo Frau Berger,\n\nfreigegeben.\n\nViele Grüße\nAnna Schmidt\n\nVon meinem iPhone gesendet",
    "Sieht gut aus, keine Änderungen.",
    "Einverstanden, danke!",
    "Alles gut, kann so raus.",
    "C'est validé, merci !",
    "Bonjour,\n\nOK pour moi, vous pouvez publier.\n\nCordialement,\nMarie Dupont",
    "Je valide.",
    "Rien à changer, parfait.",
    "Aprobado, adelante.",
    "Hola,\n\nTodo perfecto, pueden publicarlo.\n\nSaludos,\nJuan\nEnviado desde mi iPhone",
    "Sin cambios, todo bien.",
    "De acuerdo, gracias.",
]
CHANGES = [
    "Please change the second paragraph.",
    "Not approved.",
    "Not approved yet - the intro is too long.",
    "Looks good but change the title to 'Fleet 2027'.",
    "The LinkedIn post is too long, please make it shorter.",
    "Approved except the blog post: the figures are outdated.",
    "I don't like the tone.",
    "Can you replace 'cheap' with 'affordable'?",
    "Great work! One thing: there's a typo in the last sentence.",
    "Bitte ändern Sie die Überschrift.",
    "Nicht freigegeben: der zweite Absatz ist falsch.",
    "Passt so nicht.",
    "Das gefällt mir nicht.",
    "Es gibt einen Tippfehler im zweiten Satz.\n\nMit freundlichen Grüßen\nAnna Schmidt",
    "Pas validé, il y a une erreur dans le titre.",
    "Merci, mais pouvez-vous modifier l'introduction ?",
    "Ça ne va pas du tout.",
    "No aprobado. Cambien el segundo párrafo, por favor.",
    "No me gusta el título.",
    "Hola,\n\nhay un error en la cifra del segundo párrafo.\n\nUn saludo,\nJuan",
]
UNCLEAR = [
    "Thanks, I'll look at it tomorrow.",
    "Received, thanks.",
    "Approved? What do you mean?",
    "Let me check with my boss and get back to you.",
    "Looks good, but let me check with my boss first.",
    "When will it be published?",
    "Who wrote this?",
    "OK",
    "",
    "Sent from my iPhone",
    "Ich melde mich nächste Woche.",
    "Je reviens vers vous demain.",
    "Lo consulto con mi jefe y le confirmo.",
    "Thanks!\n\nAnn",
]


@pytest.mark.parametrize("text", APPROVALS)
def test_approvals(text: str) -> None:
    assert review_intent(text)[0] == "approve"


@pytest.mark.parametrize("text", CHANGES)
def test_change_requests(text: str) -> None:
    assert review_intent(text)[0] == "changes"


@pytest.mark.parametrize("text", UNCLEAR)
def test_unclear_replies_are_left_to_a_person(text: str) -> None:
    assert review_intent(text)[0] == "unclear"


def test_the_comment_is_the_clients_own_words_without_greeting_or_signature() -> None:
    text = (
        "Hi Alex,\n\nPlease change the second paragraph: we no longer ship to Austria.\n"
        "And the title should say 2027.\n\nBest regards,\nAnn Lee\nAcme Logistics\n\nSent from my iPhone"
    )
    intent, comment = review_intent(text)
    assert intent == "changes"
    assert comment == (
        "Please change the second paragraph: we no longer ship to Austria.\nAnd the title should say 2027."
    )
    assert own_words("Sent from my iPhone") == ""


def _reply(text: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann Lee <ann@acme.example>"
    message["To"] = "reviews@agency.example"
    message["Subject"] = "Re: Acme Logistics: 3 pieces for your review"
    message["Message-ID"] = "<r1@acme.example>"
    message["In-Reply-To"] = "<review.abc@agency.example>"
    message["References"] = "<review.abc@agency.example>"
    message.set_content(
        text + "\n\nOn Mon, 30 Nov 2026 at 10:00, Bright Agency <reviews@agency.example> wrote:\n"
        "> Hello Ann,\n> 3 pieces for Acme Logistics are ready for your review:\n> approved? change?\n"
    )
    return message.as_bytes()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Approved, thanks", "approve"),
        ("Approved.\n\nSent from my iPhone", "approve"),
        ("Yes", "approve"),
        ("passt so, bitte veröffentlichen", "approve"),
        ("c'est validé", "approve"),
        ("aprobado, adelante", "approve"),
        ("Please change the second paragraph.", "changes"),
        ("Not approved.", "changes"),
        ("Received, thanks.", "unclear"),
    ],
)
def test_a_real_reply_is_offered_with_its_intent(text: str, intent: str) -> None:
    """Through the product's classifier (the category must be one followup offers) and the very
    function followup publishes with: the quote is gone, the intent read on the rest."""
    raw = _reply(text)
    c = classify_message(raw)
    assert c.category in HUMAN_REPLIES, c
    offered = unmatched_reply(7, raw, c, datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert offered.in_reply_to == "<review.abc@agency.example>"
    assert "<review.abc@agency.example>" in offered.references
    assert "wrote:" not in offered.text
    assert offered.review_intent == intent
