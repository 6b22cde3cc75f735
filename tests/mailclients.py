"""Replies written the way real mail clients write them: Apple Mail, Gmail and Outlook (plain and HTML),
HTML-only, quoted-printable and base64 bodies, non-UTF-8 charsets, and a forward instead of a reply."""

from __future__ import annotations

import datetime as dt
import html
from email import policy
from email.charset import BASE64, QP, Charset
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid

WHEN = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC)
STYLES = ("apple", "apple_html", "gmail", "gmail_html_only", "outlook", "outlook_html_only", "outlook_desktop",
          "iphone_base64", "latin1_qp", "windows1252", "forward", "bottom_posted")


def _quoted(text: str) -> str:
    return "\n".join(("> " + line) if line else ">" for line in text.splitlines())


def _digest_html_body(digest: EmailMessage) -> str:
    for part in digest.walk():
        if part.get_content_type() == "text/html":
            text = str(part.get_content())  # type: ignore[attr-defined]
            return text.split("<body", 1)[-1].split(">", 1)[-1].rsplit("</body>", 1)[0]
    return ""


def _digest_text(digest: EmailMessage) -> str:
    for part in digest.walk():
        if part.get_content_type() == "text/plain":
            return str(part.get_content())  # type: ignore[attr-defined]
    return ""


def _sender_line(digest: EmailMessage) -> str:
    return str(digest["From"])


def plain_body(style: str, instructions: str, digest: EmailMessage) -> str:
    quoted = _digest_text(digest)
    sender = _sender_line(digest)
    if style in ("apple", "iphone_base64"):
        return (f"{instructions}\n\nSent from my iPhone\n\n> On 25 Nov 2026, at 20:00, {sender} wrote:\n>\n"
                f"{_quoted(quoted)}\n")
    if style in ("gmail", "latin1_qp"):
        name, _, address = sender.partition(" <")
        return (f"{instructions}\n\nOn Tue, 25 Nov 2026 at 20:00, {name} <\n{address.rstrip('>')}> wrote:\n\n"
                f"{_quoted(quoted)}\n")
    if style in ("outlook", "windows1252"):
        return (f"{instructions}\n\nGet Outlook for iOS\n________________________________\nFrom: {sender}\n"
                f"Sent: Tuesday, November 25, 2026 8:00:00 PM\nTo: me@example.com\nSubject: {digest['Subject']}\n\n"
                f"{quoted}\n")
    if style == "outlook_desktop":
        return (f"{instructions}\n\n-----Original Message-----\nFrom: {sender}\nSent: Tuesday, November 25, 2026 "
                f"8:00 PM\nTo: me@example.com\nSubject: {digest['Subject']}\n\n{quoted}\n")
    if style == "forward":
        return (f"{instructions}\n\n---------- Forwarded message ---------\nFrom: {sender}\nDate: Tue, 25 Nov 2026 "
                f"at 20:00\nSubject: {digest['Subject']}\nTo: <me@example.com>\n\n{quoted}\n")
    if style == "bottom_posted":
        return f"On Tue, 25 Nov 2026 at 20:00, {sender} wrote:\n{_quoted(quoted)}\n\n{instructions}\n\n-- \nMe\n"
    raise ValueError(style)


def html_body(style: str, instructions: str, digest: EmailMessage) -> str:
    lines = "".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in instructions.splitlines())
    original = _digest_html_body(digest)
    sender = html.escape(_sender_line(digest))
    if style == "apple_html":
        return (f"<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\"></head>"
                f"<body dir=\"auto\">{lines}<div><br id=\"lineBreakAtBeginningOfSignature\"><div dir=\"ltr\">"
                f"Sent from my iPhone</div><div dir=\"ltr\"><br><blockquote type=\"cite\">On 25 Nov 2026, at 20:00, "
                f"{sender} wrote:<br><br></blockquote></div><blockquote type=\"cite\"><div dir=\"ltr\">{original}"
                f"</div></blockquote></div></body></html>")
    if style == "gmail_html_only":
        return (f"<div dir=\"ltr\">{lines}</div><br><div class=\"gmail_quote gmail_quote_container\"><div dir=\"ltr\" "
                f"class=\"gmail_attr\">On Tue, 25 Nov 2026 at 20:00, {sender} wrote:<br></div><blockquote "
                f"class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);"
                f"padding-left:1ex\">{original}</blockquote></div>")
    if style == "outlook_html_only":
        return (f"<html><head><style>p {{margin:0}}</style></head><body><div class=\"elementToProof\" style=\"font-"
                f"family: Aptos\">{lines}</div><div id=\"appendonsend\"></div><hr style=\"display:inline-block;"
                f"width:98%\" tabindex=\"-1\"><div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri\"><b>From:"
                f"</b> {sender}<br><b>Sent:</b> Tuesday, November 25, 2026 8:00 PM<br><b>Subject:</b> digest</font>"
                f"</div><div>{original}</div></body></html>")
    raise ValueError(style)


def _reply_headers(message: EmailMessage | MIMEMultipart | MIMEText, digest: EmailMessage, sender: str,
                   style: str) -> None:
    subject = str(digest["Subject"])
    message["Subject"] = ("Fwd: " if style == "forward" else "Re: ") + subject
    message["From"] = f"Me <{sender}>"
    message["To"] = str(digest["From"])
    message["Date"] = format_datetime(WHEN)
    message["Message-ID"] = make_msgid("reply", domain="example.com")
    if style != "forward":
        message["In-Reply-To"] = str(digest["Message-ID"])
        message["References"] = str(digest["Message-ID"])


def _fit(text: str, charset: str) -> str:
    return text.encode(charset, "replace").decode(charset)


def write_reply(style: str, instructions: str, digest: EmailMessage, sender: str = "me@example.com") -> bytes:
    """A reply to ``digest`` saying ``instructions``, as the client ``style`` would send it."""
    if style in ("apple_html", "gmail_html_only", "outlook_html_only"):
        body = html_body(style, instructions, digest)
        message: EmailMessage | MIMEMultipart | MIMEText
        if style == "apple_html":  # Apple Mail sends both parts; the plain one is what we prefer
            message = MIMEMultipart("alternative")
            message.attach(MIMEText(plain_body("apple", instructions, digest), "plain", "utf-8"))
            message.attach(MIMEText(body, "html", "utf-8"))
        else:
            message = MIMEText(body, "html", "utf-8")
    elif style == "iphone_base64":
        charset = Charset("utf-8")
        charset.body_encoding = BASE64
        message = MIMEText(plain_body(style, instructions, digest), "plain", charset)  # type: ignore[arg-type]
    elif style == "latin1_qp":
        charset = Charset("iso-8859-1")
        charset.body_encoding = QP
        text = plain_body(style, f"{instructions}\nMerci, à demain !", digest)
        message = MIMEText(_fit(text, "iso-8859-1"), "plain", charset)  # type: ignore[arg-type]
    elif style == "windows1252":
        text = plain_body(style, f"{instructions}\n“Thanks” – me", digest)
        message = MIMEText(_fit(text, "cp1252"), "plain", "cp1252")
    else:
        message = EmailMessage(policy=policy.SMTP)
        message.set_content(plain_body(style, instructions, digest))
    _reply_headers(message, digest, sender, style)
    return message.as_bytes()
