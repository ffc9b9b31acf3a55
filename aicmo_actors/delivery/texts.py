"""What delivery says to people, in one place: the delivery email, the files' headings, the
alerts. Pure functions of their arguments."""

from __future__ import annotations

_TYPE_LABELS = {
    "blog_post": "Blog post",
    "social_post": "Social post",
    "newsletter": "Newsletter",
    "landing_page": "Landing page",
    "case_study": "Case study",
    "whitepaper": "White paper",
    "email": "Email",
    "video_script": "Video script",
}


def type_label(type_: str) -> str:
    """ "blog_post" -> "Blog post" (an unknown type: its words, capitalised)."""
    return _TYPE_LABELS.get(type_, type_.replace("_", " ").strip().capitalize() or "Piece")


def one_line(text: str) -> str:
    return " ".join(text.split())


def meta_line(type_: str, channel: str, version: int) -> str:
    """The line under a piece's title: what it is, where it goes, which version."""
    return f"{type_label(type_)} for {channel or 'any channel'} - version {version}"


def email_subject(company: str, title: str, type_: str) -> str:
    return one_line(f"{company}: {type_label(type_)} ready - {title}")


def email_text(*, contact_name: str | None, agency: str, title: str, type_: str, channel: str, text: str) -> str:
    """The delivery email's body: a short note, then the piece's text (also attached)."""
    hello = f"Hello {one_line(contact_name)}," if contact_name and contact_name.strip() else "Hello,"
    return (
        f"{hello}\n\n"
        f'here is your approved {type_label(type_).lower()} for {channel or "any channel"}: "{one_line(title)}".\n'
        "It is attached as a web page (HTML), a PDF and a Word document; the text follows below.\n\n"
        "----------------------------------------\n\n"
        f"{text.strip()}\n\n"
        "----------------------------------------\n\n"
        f"Best regards,\n{agency}\n"
    )


def alert_summary(method: str, company: str, title: str, *, unconfirmed: bool, permanent: bool) -> str:
    what = f"{method} delivery of {one_line(title)!r} to {one_line(company)}"
    if unconfirmed:
        return f"Unconfirmed {what}: check with the client"
    if permanent:
        return f"Failed {what}"
    return f"Failing {what}"


def alert_text(*, key: str, method: str, attempts: int, error: str, unconfirmed: bool, permanent: bool) -> str:
    """What the person alerted reads, and what to do."""
    lines = [f"Delivery {key} ({method}), {attempts} attempt(s). Last error: {error or '-'}."]
    if unconfirmed:
        lines.append(
            "The email was being handed to the mail server when the service stopped: it may or may not have "
            "reached the client, and it is never sent again by itself. Ask the client whether it arrived; if not, "
            f"`python run.py delivery retry {key}` sends it once more."
        )
    elif permanent:
        lines.append(
            "The other side refused it for good (fix the address, the URL or the receiver), then "
            f"`python run.py delivery retry {key}`."
        )
    else:
        lines.append(
            "It is still being retried with growing waits. `python run.py delivery show "
            f"{key}` shows the receiver's last answer."
        )
    return "\n".join(lines)
