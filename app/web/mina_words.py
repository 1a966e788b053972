"""The words of the patient's and relative's pages (``/mina``), in plain Swedish and English.

Written for a reader of 84: short sentences, everyday words, no abbreviations. Falls back to
the care team's words (``words``) for what both share (the page frame, reading types).
"""

from __future__ import annotations

from collections.abc import Callable

from app.web import words

MINA_WORDS: dict[str, dict[str, str]] = {
    "sv": {
        "mina_service": "Min egenvård",
        "service": "Min egenvård",
        "patients_only": (
            "Sidorna under Mina är för patienter och närstående. "
            "Vården har sina sidor under Arbetslista."
        ),
        "nav_overview": "Översikt",
        "nav_enter": "Skriv in ett värde",
        "nav_access": "Vem har läst",
        "choose_title": "Vems uppgifter vill du se?",
        "choose_intro": "Du kan se uppgifter för de här personerna.",
        "choose_self": "Mina egna uppgifter",
        "choose_none": "Du har inte tillgång till någons uppgifter just nu.",
        "acting_for": "Du ser uppgifter för {name}.",
        "switch_person": "Byt person",
        "overview_title": "Hej {name}",
        "overview_title_other": "{name}",
        "latest_title": "Dina senaste värden",
        "latest_title_other": "Senaste värden",
        "latest_none": "Inga värden än.",
        "measured_at": "uppmätt {time}",
        "your_limit": "Din gräns",
        "limit_outside": "Utanför din gräns",
        "limit_inside": "Inom din gräns",
        "op_lt": "under",
        "op_le": "högst",
        "op_gt": "över",
        "op_ge": "minst",
        "advice_title": "Råd till dig",
        "advice_title_other": "Råd",
        "advice_none": "Inga råd just nu.",
        "advice_urgent": "Viktigt",
        "goals_title": "Dina mål",
        "goals_none": "Inga mål än.",
        "agreements_title": "Det här har ni kommit överens om",
        "agreements_none": "Inga överenskommelser än.",
        "call_title": "Vem du ringer",
        "call_none": "Ring din vårdcentral.",
        "call_emergency": "Vid fara för livet: ring 112.",
        "enter_title": "Skriv in ett värde",
        "enter_intro": "Skriv in det du har mätt. Du får råd direkt om värdet behöver det.",
        "enter_type": "Vad har du mätt?",
        "enter_time": "När mätte du?",
        "enter_time_hint": "Lämna som det är om du mätte nyss.",
        "enter_save": "Spara värdet",
        "enter_other_type": "Skriv in något annat",
        "offline_waiting": ("{n} värden är sparade i telefonen. De skickas när du har nät igen."),
        "offline_sent": "Dina värden är skickade.",
        "offline_invalid": "Skriv ett tal, till exempel 72,4.",
        "enter_saved": "Värdet är sparat.",
        "enter_duplicate": "Värdet var redan sparat.",
        "enter_new_advice": "Nytt råd: {title}",
        "enter_errors": "Värdet kunde inte sparas",
        "enter_number": "Skriv ett tal, till exempel {example}.",
        "enter_error_range": (
            "Värdet verkar inte stämma. Mät igen, eller ring din vård om det stämmer."
        ),
        "enter_error_time": "Tiden kan inte vara i framtiden.",
        "enter_error_other": "Värdet kunde inte sparas: {message}",
        "access_title": "Vem har läst mina uppgifter",
        "access_title_other": "Vem har läst uppgifterna",
        "access_intro": "Här ser du vilka som har läst eller ändrat uppgifterna, och när.",
        "access_from": "Från och med dag",
        "access_to": "Till och med dag",
        "access_filter": "Visa",
        "access_none": "Ingen har läst något under den tiden.",
        "col_when": "När",
        "col_who": "Vem",
        "col_what": "Vad",
        "what_read": "läste",
        "what_write": "ändrade",
        "what_refused": "fick inte läsa",
        "who_self": "Du själv",
        "who_system": "Tjänsten",
    },
    "en": {
        "mina_service": "My self-care",
        "service": "My self-care",
        "patients_only": (
            "The My pages are for patients and relatives. "
            "The care team has its own pages under Worklist."
        ),
        "nav_overview": "Overview",
        "nav_enter": "Enter a value",
        "nav_access": "Who has read",
        "choose_title": "Whose information do you want to see?",
        "choose_intro": "You can see information for these people.",
        "choose_self": "My own information",
        "choose_none": "You do not have access to anyone's information right now.",
        "acting_for": "You are seeing information for {name}.",
        "switch_person": "Change person",
        "overview_title": "Hello {name}",
        "overview_title_other": "{name}",
        "latest_title": "Your latest values",
        "latest_title_other": "Latest values",
        "latest_none": "No values yet.",
        "measured_at": "measured {time}",
        "your_limit": "Your limit",
        "limit_outside": "Outside your limit",
        "limit_inside": "Within your limit",
        "op_lt": "below",
        "op_le": "at most",
        "op_gt": "above",
        "op_ge": "at least",
        "advice_title": "Advice for you",
        "advice_title_other": "Advice",
        "advice_none": "No advice right now.",
        "advice_urgent": "Important",
        "goals_title": "Your goals",
        "goals_none": "No goals yet.",
        "agreements_title": "What you have agreed",
        "agreements_none": "No agreements yet.",
        "call_title": "Whom to call",
        "call_none": "Call your health centre.",
        "call_emergency": "If life is in danger: call 112.",
        "enter_title": "Enter a value",
        "enter_intro": "Enter what you measured. You get advice at once if the value needs it.",
        "enter_type": "What did you measure?",
        "enter_time": "When did you measure?",
        "enter_time_hint": "Leave it as it is if you measured just now.",
        "enter_save": "Save the value",
        "enter_other_type": "Enter something else",
        "offline_waiting": "{n} values are kept on this device. They are sent when you are online.",
        "offline_sent": "Your values are sent.",
        "offline_invalid": "Enter a number, for example 72.4.",
        "enter_saved": "The value is saved.",
        "enter_duplicate": "The value was already saved.",
        "enter_new_advice": "New advice: {title}",
        "enter_errors": "The value could not be saved",
        "enter_number": "Enter a number, for example {example}.",
        "enter_error_range": (
            "The value does not look right. Measure again, or call your care team."
        ),
        "enter_error_time": "The time cannot be in the future.",
        "enter_error_other": "The value could not be saved: {message}",
        "access_title": "Who has read my information",
        "access_title_other": "Who has read the information",
        "access_intro": "Here you see who has read or changed the information, and when.",
        "access_from": "From day",
        "access_to": "To day",
        "access_filter": "Show",
        "access_none": "Nobody read anything in that time.",
        "col_when": "When",
        "col_who": "Who",
        "col_what": "What",
        "what_read": "read",
        "what_write": "changed",
        "what_refused": "was refused",
        "who_self": "You",
        "who_system": "The service",
    },
}


def mina_word(lang: str, key: str) -> str:
    """One text in ``lang``: the patient pages' own, else the care team pages' words."""
    own = MINA_WORDS.get(lang, MINA_WORDS["sv"]).get(key) or MINA_WORDS["sv"].get(key)
    return own if own is not None else words.word(lang, key)


def for_lang(lang: str) -> Callable[[str], str]:
    """The ``t`` of a patient page's template in ``lang``."""
    return lambda key: mina_word(lang, key)
