"""Quote headers, original-message blocks and signatures of the ten most used mail clients, in English,
German, French, Spanish, Italian and Dutch: only the person's lines above them are read (a test each)."""

from __future__ import annotations

import textwrap
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from photosorter.core.categories import DEFAULT_CATEGORIES
from photosorter.core.replies import parse_reply
from photosorter.mailflow import reply_text
from tests.mailfakes import sent_digest

LANGUAGES = ("en", "de", "fr", "es", "it", "nl")
NAME = "Photosorter <photos@example.com>"
INSTRUCTIONS = "3 food\n5-6 beer can\n1 ok"

# per language: Outlook's field labels (from, sent, to, subject) and its original-message line
OUTLOOK_FIELDS = {
    "en": ("From:", "Sent:", "To:", "Subject:", "-----Original Message-----"),
    "de": ("Von:", "Gesendet:", "An:", "Betreff:", "-----Ursprüngliche Nachricht-----"),
    "fr": ("De :", "Envoyé :", "À :", "Objet :", "-----Message d'origine-----"),
    "es": ("De:", "Enviado el:", "Para:", "Asunto:", "-----Mensaje original-----"),
    "it": ("Da:", "Inviato:", "A:", "Oggetto:", "-----Messaggio originale-----"),
    "nl": ("Van:", "Verzonden:", "Aan:", "Onderwerp:", "-----Oorspronkelijk bericht-----"),
}
SAMSUNG = {  # separator, from, date, to, subject, signature
    "en": ("-------- Original message --------", "From:", "Date:", "To:", "Subject:", "Sent from my Galaxy"),
    "de": ("-------- Ursprüngliche Nachricht --------", "Von:", "Datum:", "An:", "Betreff:",
           "Von meinem Galaxy gesendet"),
    "fr": ("-------- Message d'origine --------", "De :", "Date :", "À :", "Objet :", "Envoyé depuis mon Galaxy"),
    "es": ("-------- Mensaje original --------", "De:", "Fecha:", "Para:", "Asunto:", "Enviado desde mi Galaxy"),
    "it": ("-------- Messaggio originale --------", "Da:", "Data:", "A:", "Oggetto:", "Inviato dal mio Galaxy"),
    "nl": ("-------- Oorspronkelijk bericht --------", "Van:", "Datum:", "Aan:", "Onderwerp:",
           "Verzonden vanaf mijn Galaxy"),
}
APPLE = {
    "en": ("On 25 Nov 2026, at 20:00, {n} wrote:", "Sent from my iPhone"),
    "de": ("Am 25.11.2026 um 20:00 schrieb {n}:", "Von meinem iPhone gesendet"),
    "fr": ("Le 25 nov. 2026 à 20:00, {n} a écrit :", "Envoyé de mon iPhone"),
    "es": ("El 25 nov 2026, a las 20:00, {n} escribió:", "Enviado desde mi iPhone"),
    "it": ("Il giorno 25 nov 2026, alle ore 20:00, {n} ha scritto:", "Inviato da iPhone"),
    "nl": ("Op 25 nov 2026 om 20:00 heeft {n} het volgende geschreven:", "Verstuurd vanaf mijn iPhone"),
}
GMAIL = {
    "en": "On Tue, 25 Nov 2026 at 20:00, {n} wrote:",
    "de": "Am Di., 25. Nov. 2026 um 05:42 Uhr schrieb {n}:",
    "fr": "Le mar. 25 nov. 2026 à 20:00, {n} a écrit :",
    "es": "El mar, 25 nov 2026 a las 20:00, Photosorter (<photos@example.com>) escribió:",
    "it": "Il giorno mar 25 nov 2026 alle ore 20:00 {n} ha scritto:",
    "nl": "Op di 25 nov 2026 om 20:00 schreef {n}:",
}
THUNDERBIRD = {
    "en": "On 25/11/2026 20:00, Photosorter wrote:",
    "de": "Am 25.11.26 um 20:00 schrieb Photosorter:",
    "fr": "Le 25/11/2026 à 20:00, Photosorter a écrit :",
    "es": "El 25/11/26 a las 20:00, Photosorter escribió:",
    "it": "Il 25/11/26 20:00, Photosorter ha scritto:",
    "nl": "Op 25-11-2026 om 20:00 schreef Photosorter:",
}
YAHOO = {
    "en": ("On Tuesday, November 25, 2026 at 08:00:00 PM GMT+1, {n} wrote:", "Sent from Yahoo Mail for iPhone"),
    "de": ("Am Dienstag, 25. November 2026 um 20:00:00 MEZ hat {n} Folgendes geschrieben:",
           "Gesendet von Yahoo Mail auf Android"),
    "fr": ("Le mardi 25 novembre 2026 à 20:00:00 UTC+1, {n} a écrit :", "Envoyé de Yahoo Mail pour iPhone"),
    "es": ("El martes, 25 de noviembre de 2026, 20:00:00 CET, {n} escribió:", "Enviado desde Yahoo Mail para iPhone"),
    "it": ("Il martedì 25 novembre 2026 alle ore 20:00:00 CET, {n} ha scritto:", "Inviato da Yahoo Mail su Android"),
    "nl": ("Op dinsdag 25 november 2026 om 20:00:00 CET schreef {n}:", "Verzonden met Yahoo Mail voor iPhone"),
}
PROTON = {  # separator, signature (the quote header is Yahoo's wording)
    "en": ("------- Original Message -------", "Sent with Proton Mail secure email."),
    "de": ("------- Original-Nachricht -------", "Gesendet mit der sicheren E-Mail-App Proton Mail."),
    "fr": ("------- Message d'origine -------", "Envoyé avec la messagerie sécurisée Proton Mail."),
    "es": ("------- Mensaje original -------", "Enviado con el correo electrónico seguro de Proton Mail."),
    "it": ("------- Messaggio originale -------", "Inviato con l'email sicura Proton Mail."),
    "nl": ("------- Oorspronkelijk bericht -------", "Verzonden met beveiligde e-mail van Proton Mail."),
}
OUTLOOK_MOBILE = {"en": "Get Outlook for iOS", "de": "Outlook für iOS beziehen", "fr": "Obtenir Outlook pour iOS",
                  "es": "Obtener Outlook para iOS", "it": "Scarica Outlook per iOS",
                  "nl": "Outlook voor iOS downloaden"}
GMX = {  # GMX, Web.de and mail.com start the block with the date
    "en": ("Sent: Tuesday, November 25, 2026 at 8:00 PM", "From:", "To:", "Subject:"),
    "de": ("Gesendet: Dienstag, 25. November 2026 um 20:00 Uhr", "Von:", "An:", "Betreff:"),
    "fr": ("Envoyé: mardi 25 novembre 2026 à 20:00", "De:", "À:", "Objet:"),
    "es": ("Enviado: martes, 25 de noviembre de 2026 a las 20:00", "De:", "Para:", "Asunto:"),
    "it": ("Inviato: martedì 25 novembre 2026 alle 20:00", "Da:", "A:", "Oggetto:"),
    "nl": ("Verzonden: dinsdag 25 november 2026 om 20:00", "Van:", "Aan:", "Onderwerp:"),
}


def _quoted(text: str) -> str:
    return "\n".join(("> " + line) if line else ">" for line in text.splitlines())


def _wrapped(header: str) -> str:
    return "\n".join(textwrap.wrap(header, 60))  # clients wrap long quote headers


def body(client: str, language: str, digest: str, subject: str) -> str:
    """A reply as ``client`` writes it in ``language``: the instructions on top, the digest below."""
    top = INSTRUCTIONS + "\n\n"
    if client == "apple":
        header, signature = APPLE[language]
        return f"{top}{signature}\n\n{header.format(n=NAME)}\n\n{_quoted(digest)}\n"
    if client == "gmail":
        return f"{top}{_wrapped(GMAIL[language].format(n=NAME))}\n\n{_quoted(digest)}\n"
    if client == "thunderbird":
        return f"{top}-- \nMe\n\n{THUNDERBIRD[language]}\n{_quoted(digest)}\n"
    if client == "yahoo":
        header, signature = YAHOO[language]
        return f"{top}{signature}\n\n{_wrapped(header.format(n=NAME))}\n\n{_quoted(digest)}\n"
    if client == "proton":
        separator, signature = PROTON[language]
        header = YAHOO[language][0].format(n=NAME)
        return f"{top}{signature}\n\n{separator}\n{_wrapped(header)}\n\n{_quoted(digest)}\n"
    if client == "samsung":
        separator, sender, date, to, about, signature = SAMSUNG[language]
        return (f"{top}{signature}\n\n{separator}\n{sender} {NAME}\n{date} 25/11/2026 20:00 (GMT+01:00)\n"
                f"{to} me@example.com\n{about} {subject}\n\n{digest}\n")
    if client == "gmx":
        sent, sender, to, about = GMX[language]
        return f"{top}{sent}\n{sender} \"{NAME}\"\n{to} me@example.com\n{about} {subject}\n\n{digest}\n"
    sender, sent, to, about, original = OUTLOOK_FIELDS[language]
    block = f"{sender} {NAME}\n{sent} 25.11.2026 20:00\n{to} me@example.com\n{about} {subject}\n\n{digest}\n"
    if client == "outlook_desktop":
        return f"{top}{original}\n{block}"
    if client == "outlook_web":
        return f"{top}{'_' * 32}\n{block}"
    if client == "outlook_mobile":
        return f"{top}{OUTLOOK_MOBILE[language]}\n\n{block}"
    raise ValueError(client)


CLIENTS = ("apple", "gmail", "outlook_desktop", "outlook_web", "outlook_mobile", "thunderbird", "yahoo", "samsung",
           "proton", "gmx")


@pytest.fixture(scope="module")
def digest() -> EmailMessage:
    return sent_digest(12)[0]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("client", CLIENTS)
def test_a_reply_in_each_client_and_language_gives_only_its_instructions(client: str, language: str,
                                                                         digest: EmailMessage) -> None:
    plain = digest.get_body(("plain",))
    assert plain is not None
    reply = EmailMessage()
    reply["Subject"] = f"Re: {digest['Subject']}"
    reply.set_content(body(client, language, str(plain.get_content()), str(digest["Subject"])))  # type: ignore[attr-defined]
    message = BytesParser(policy=policy.default).parsebytes(reply.as_bytes())
    assert isinstance(message, EmailMessage)
    text = reply_text(message)
    assert text == INSTRUCTIONS
    result = parse_reply(text, range(1, 13), DEFAULT_CATEGORIES)
    assert (result.labels, set(result.confirmed), result.problems) == ({3: "food", 5: "beer", 6: "beer"}, {1}, ())
