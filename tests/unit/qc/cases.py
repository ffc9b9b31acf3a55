"""Realistic drafts (drafts/*.md) with the client, the brief and the item each was written for.

Each draft is clean: QC passes it with no finding. The tests plant one problem at a time
(`Case.planted`) and expect QC to find it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from aicmo_actors.qc.checks import Earlier, Verdict, check_draft
from contracts.clients import ClientInfo
from contracts.strategy import PlannedItem

DRAFTS = Path(__file__).resolve().parent / "drafts"


def client(company: str, language: str, country: str, email: str, name: str | None = None) -> ClientInfo:
    return ClientInfo(
        client_ref=uuid.uuid5(uuid.NAMESPACE_DNS, company),
        company=company,
        contact_name=name,
        contact_email=email,
        language=language,
        country=country,
    )


def item(kind: str, channel: str, **limits: int) -> PlannedItem:
    return PlannedItem(
        key=f"{kind}:{channel}:1", type=kind, channel=channel, piece=1, due=date(2027, 3, 1), topic="topic", **limits
    )


ACME = client("Acme Analytics Ltd", "en", "GB", "ann.lee@acmeanalytics.example", "Ann Lee")
ACME_BRIEF = {
    "business": "Route planning software for regional carriers: telematics data in, better plans out.",
    "audience": "Fleet managers and transport planners at logistics firms in the UK.",
    "goals": "More demo requests from mid-sized fleets.",
    "brand_voice": "Clear, practical, friendly. No hype.",
    "competitors": "routeco.example\nfleetwise.example",
    "words_to_use": "route optimisation, fleet utilisation, on-time delivery",
    "words_to_avoid": "cheap, guaranteed, revolutionary",
    "assets": "Logo: https://acmeanalytics.example/brand. Public contact: hello@acmeanalytics.example, "
    "+44 20 7946 0958. Our planners call the return leg the backhaul.",
}
NORDLICHT = client("Nordlicht Logistik GmbH", "de", "DE", "k.brandt@nordlicht-logistik.example", "Katrin Brandt")
NORDLICHT_BRIEF = {
    "business": "Regionale Spedition mit eigenen Disponenten: Nahverkehr und Rückladungen in Norddeutschland.",
    "audience": "Einkäufer und Logistikleiter im Mittelstand.",
    "goals": "Mehr Anfragen für Rahmenverträge.",
    "brand_voice": "Sachlich, freundlich, norddeutsch knapp.",
    "competitors": "hansa-trans.example",
    "words_to_use": "Routenplanung, Auslastung",
    "words_to_avoid": "billig, Schnäppchen",
    "assets": "Kontakt: info@nordlicht-logistik.example, 040 123456",
}
LUMIERE = client("Atelier Lumière SARL", "fr", "FR", "claire@atelier-lumiere.example", "Claire Martin")
LUMIERE_BRIEF = {
    "business": "Atelier de luminaires faits main à Lyon, pour architectes et restaurants.",
    "audience": "Architectes d'intérieur, restaurateurs.",
    "goals": "Plus de projets sur mesure.",
    "brand_voice": "Chaleureux, précis, artisanal.",
    "competitors": "lumen-design.example",
    "words_to_use": "fait main, luminaire",
    "words_to_avoid": "bon marché, low-cost",
    "assets": "",
}
VERDE = client("Verde Viva S.L.", "es", "ES", "lucia@verdeviva.example", "Lucía Gómez")
VERDE_BRIEF = {
    "business": "Plantas de interior y jardines para oficinas en Madrid.",
    "audience": "Responsables de oficinas y recursos humanos.",
    "goals": "Más contratos de mantenimiento.",
    "brand_voice": "Cercano, alegre, práctico.",
    "competitors": "jardinurbano.example",
    "words_to_use": "plantas de interior, mantenimiento",
    "words_to_avoid": "barato, milagroso",
    "assets": "",
}


@dataclass(frozen=True)
class Case:
    """One draft and what it was written for."""

    name: str
    title: str
    client: ClientInfo
    brief: dict[str, str]
    item: PlannedItem
    reading_grade: float | None
    earlier: tuple[Earlier, ...] = field(default=())

    @property
    def text(self) -> str:
        return (DRAFTS / f"{self.name}.md").read_text(encoding="utf-8")

    def check(self, text: str | None = None, *, title: str | None = None, **changes: object) -> Verdict:
        case = Case(**{**self.__dict__, **changes})  # type: ignore[arg-type]
        return check_draft(
            self.title if title is None else title,
            case.text if text is None else text,
            item=case.item,
            brief=case.brief,
            client=case.client,
            reading_grade=case.reading_grade,
            earlier=case.earlier,
        )

    def planted(self, old: str, new: str) -> str:
        """The draft with `old` (which must be in it) replaced by `new` once."""
        assert old in self.text, f"{old!r} not in {self.name}"
        return self.text.replace(old, new, 1)


EN_BLOG = Case(
    "en_blog",
    "Five ways to cut empty miles without buying a single new truck",
    ACME,
    ACME_BRIEF,
    item("blog_post", "blog", min_words=400, max_words=900),
    8,
)
EN_LINKEDIN = Case("en_linkedin", "", ACME, ACME_BRIEF, item("social_post", "linkedin"), 8)
EN_NEWSLETTER = Case(
    "en_newsletter", "March: where the empty miles come from", ACME, ACME_BRIEF, item("newsletter", "email"), 8
)
DE_BLOG = Case(
    "de_blog",
    "Drei Wege zu weniger Leerfahrten",
    NORDLICHT,
    NORDLICHT_BRIEF,
    item("blog_post", "blog", min_words=200, max_words=600),
    12,
)
FR_LINKEDIN = Case("fr_linkedin", "", LUMIERE, LUMIERE_BRIEF, item("social_post", "linkedin", max_chars=1300), 10)
ES_NEWSLETTER = Case(
    "es_newsletter", "Boletín de primavera: plantas de interior", VERDE, VERDE_BRIEF, item("newsletter", "email"), 12
)
CASES = (EN_BLOG, EN_LINKEDIN, EN_NEWSLETTER, DE_BLOG, FR_LINKEDIN, ES_NEWSLETTER)
