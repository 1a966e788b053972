"""Whom advice speaks to and whom it tells the patient to call.

A rule's advice is written twice (:class:`rules.language.AdviceSpec`): to the patient ("Din vikt
har ökat snabbt") and to a proxy, a relative who follows the patient's advice, about the
patient by first name ("Astas vikt har ökat snabbt"). Both are ``string.Template`` texts;
:func:`fill` fills them for one firing:

* ``$value`` the reading (as measured, rounded), ``$change`` a delta rule's change;
* ``$contact`` whom to call, as a phrase that fits after "ring" / "kontakta" / "call" /
  "contact" (:func:`contact_text`). The caller gives the patient's care contact
  (:class:`CareContact`): the app builds it from the plan's ``contact``, else the care team's
  phone (until the fast vårdkontakt of the shared plan replaces both); without one the text
  says "din vårdcentral eller ditt vårdteam" — never a promise that someone will call;
* ``$patient`` and ``$patient_gen`` (proxy texts only) the patient's first name and its
  genitive ("Asta", "Astas"; "Asta", "Asta's").

A filled value that starts a sentence gets a capital letter ("Ditt vårdteam …").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template
from typing import Final, Literal

Audience = Literal["patient", "proxy"]
"""``patient`` (the patient's own texts) or ``proxy`` (a relative's, about the patient)."""

PATIENT: Final = "patient"
PROXY: Final = "proxy"


@dataclass(frozen=True)
class CareContact:
    """Whom the patient calls: a named person (name, role) or a team, and a phone number."""

    name: str = ""
    role: str = ""
    phone: str = ""
    team: bool = False  # the care team's number, not a named person of the plan


class Addressee:
    """What advice needs to speak to a patient and about them: first name and care contact.

    The contact may be given as a function instead (``contact_of``), asked the first time
    advice is worded: most evaluations word none (a CGM value in range), and finding the
    contact is two queries in the service.
    """

    __slots__ = ("_contact", "_contact_of", "patient_name")

    def __init__(
        self,
        patient_name: str = "",
        contact: CareContact | None = None,
        *,
        contact_of: Callable[[], CareContact | None] | None = None,
    ) -> None:
        self.patient_name = patient_name
        self._contact = contact
        self._contact_of = contact_of

    @property
    def contact(self) -> CareContact | None:
        """Return whom the patient calls, if anyone (found once, when first asked)."""
        if self._contact_of is not None:
            self._contact, self._contact_of = self._contact_of(), None
        return self._contact

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Addressee):
            return NotImplemented
        return (self.patient_name, self.contact) == (other.patient_name, other.contact)

    def __hash__(self) -> int:
        return hash((self.patient_name, self.contact))

    def __repr__(self) -> str:
        return f"Addressee(patient_name={self.patient_name!r}, contact={self.contact!r})"


def first_name(display_name: str) -> str:
    """Return the first word of a person's name (``Asta Berglund`` → ``Asta``)."""
    words = display_name.split()
    return words[0] if words else ""


def genitive(name: str, lang: str) -> str:
    """Return a name's genitive: ``Astas``, ``Hans`` / ``Asta's``, ``James'``."""
    if lang == "en":
        return f"{name}'" if name.endswith("s") else f"{name}'s"
    return name if name[-1:].lower() in ("s", "x", "z") else f"{name}s"


def patient_fields(addressee: Addressee, lang: str) -> dict[str, str]:
    """Return ``$patient`` and ``$patient_gen`` in a language."""
    name = addressee.patient_name.strip()
    if not name:
        if lang == "en":
            return {"patient": "the patient", "patient_gen": "the patient's"}
        return {"patient": "patienten", "patient_gen": "patientens"}
    return {"patient": name, "patient_gen": genitive(name, lang)}


def _role(role: str, lang: str) -> str:
    # Swedish writes titles in lower case mid-sentence; keep acronyms (KOL-mottagningen).
    role = role.strip()
    if lang == "sv" and len(role) > 1 and role[0].isupper() and role[1].islower():
        return role[0].lower() + role[1:]
    return role


def contact_text(addressee: Addressee, lang: str, audience: Audience = PATIENT) -> str:
    """Return whom to call as a phrase: a named contact, the team's number, or a generic one."""
    contact = addressee.contact
    whose = patient_fields(addressee, lang)["patient_gen"]
    phone = contact.phone.strip() if contact is not None else ""
    on_phone = (f" on {phone}" if lang == "en" else f" på telefon {phone}") if phone else ""
    if contact is not None and contact.name.strip() and not contact.team:
        role = _role(contact.role, lang)
        who = f"{contact.name.strip()} ({role})" if role else contact.name.strip()
        return who + on_phone
    if contact is not None and (phone or contact.name.strip()):
        team = contact.name.strip()
        named = f" ({team})" if team else ""
        if lang == "en":
            owner = "your" if audience == PATIENT else whose
            return f"{owner} care team{named}{on_phone}"
        owner = "ditt" if audience == PATIENT else whose
        return f"{owner} vårdteam{named}{on_phone}"
    if lang == "en":
        owner = "your" if audience == PATIENT else whose
        return f"{owner} health centre or care team"
    if audience == PATIENT:
        return "din vårdcentral eller ditt vårdteam"
    return f"{whose} vårdcentral eller vårdteam"


def fill(text: str, fields: Mapping[str, str]) -> str:
    """Fill a template's placeholders; a value that starts a sentence gets a capital."""

    def one(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        name = match.group("named") or match.group("braced")
        value = fields.get(name) if name is not None else None
        if value is None:
            return match.group(0)
        before = text[: match.start()].rstrip()
        if value and (not before or before[-1] in ".!?"):
            value = value[0].upper() + value[1:]
        return value

    return Template.pattern.sub(one, text)


__all__ = [
    "PATIENT",
    "PROXY",
    "Addressee",
    "Audience",
    "CareContact",
    "contact_text",
    "fill",
    "first_name",
    "genitive",
    "patient_fields",
]
