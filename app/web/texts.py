"""The pages' words in Swedish (the default) and English, and Swedish dates and durations."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from rules.engine import DEFAULT_TZ

# The care team works in Swedish time (the service's default zone).
TIME_ZONE = ZoneInfo(DEFAULT_TZ)

TEXTS: dict[str, dict[str, str]] = {
    "sv": {
        "service": "Egenvård – vården",
        "skip": "Hoppa till innehållet",
        "switch_lang": "English",
        "switch_lang_code": "en",
        "logout": "Logga ut",
        "signed_in_as": "Inloggad som",
        "login": "Logga in",
        "login_title": "Logga in",
        "login_dev_intro": "Utvecklingsläge: välj en av exempelpersonerna att logga in som.",
        "login_choose": "Vem vill du logga in som?",
        "login_eid": "Logga in med e-legitimation",
        "login_eid_missing": (
            "Inloggning med e-legitimation är inte i drift på den här servern än. "
            "Kontakta den som driver tjänsten."
        ),
        "login_expired": "Du loggades ut eftersom du inte hade gjort något på en stund.",
        "login_oidc_intro": (
            "Du loggar in hos vårdens inloggningstjänst och kommer sedan tillbaka hit."
        ),
        "login_failed_state": (
            "Inloggningen kunde inte slutföras: den började inte här, eller tog för lång tid. "
            "Försök igen."
        ),
        "login_failed_denied": "Inloggningen avbröts. Försök igen.",
        "login_failed_token": "Inloggningen kunde inte kontrolleras. Försök igen.",
        "login_failed_unknown_user": (
            "Du har inget konto i den här tjänsten, eller så är kontot avstängt. "
            "Kontakta din vårdenhet."
        ),
        "login_failed_issuer_down": (
            "Inloggningstjänsten svarar inte just nu. Försök igen om en stund."
        ),
        "login_ended": "Du är utloggad.",
        "to_mina": "Till Min egenvård",
        "role_clinician": "vårdpersonal",
        "role_patient": "patient",
        "role_proxy": "närstående",
        "role_admin": "drift",
        "worklist": "Arbetslista",
        "worklist_intro": "Flaggor för patienterna i dina team, de allvarligaste först.",
        "filters": "Filtrera",
        "filter_team": "Team",
        "filter_all_teams": "Alla team",
        "filter_severity": "Allvarlighet",
        "filter_any": "Alla",
        "filter_status": "Status",
        "filter_overdue": "Bara försenade",
        "filter_apply": "Visa",
        "no_flags": "Inga flaggor att visa.",
        "col_patient": "Patient",
        "col_unit": "Vårdenhet",
        "col_flag": "Flagga",
        "col_severity": "Allvarlighet",
        "col_age": "Ålder",
        "col_due": "Ska hanteras",
        "col_upload": "Senaste uppladdning",
        "col_messages": "Olästa meddelanden",
        "flags_count": "flaggor",
        "severity_high": "Hög",
        "severity_moderate": "Måttlig",
        "severity_low": "Låg",
        "status_open": "Öppen",
        "status_acknowledged": "Kvitterad",
        "status_resolved": "Avslutad",
        "overdue": "Försenad",
        "due_by": "senast",
        "never": "aldrig",
        "none": "inga",
        "back_to_worklist": "Tillbaka till arbetslistan",
        "flag": "Flagga",
        "why": "Varför flaggan kom",
        "plan_version": "Egenvårdsplan, version",
        "rule": "Regel",
        "rule_version": "version",
        "readings": "Mätvärden",
        "readings_latest_of": "De senaste {shown} av {total} mätvärden som regeln räknade med.",
        "col_time": "Tid",
        "col_type": "Typ",
        "col_value": "Värde",
        "thresholds": "Gränsvärden",
        "computed": "Beräknat",
        "fired_times": "Antal gånger regeln slog till",
        "created": "Flaggad",
        "acknowledged_by": "Kvitterad av",
        "resolved_by": "Avslutad av",
        "acknowledge": "Kvittera",
        "acknowledge_hint": "Kvittera när du har sett flaggan. Den ligger kvar tills den avslutas.",
        "resolve": "Avsluta",
        "resolve_hint": "Avsluta när flaggan är hanterad.",
        "add_note": "Lägg till anteckning",
        "note_label": "Anteckning (frivillig)",
        "note_label_required": "Anteckning",
        "note_hint": "Syns bara för vården, aldrig för patienten eller närstående.",
        "notes": "Anteckningar",
        "no_notes": "Inga anteckningar än.",
        "flash_acknowledged": "Flaggan är kvitterad.",
        "flash_resolved": "Flaggan är avslutad.",
        "flash_noted": "Anteckningen är sparad.",
        "error_summary": "Det finns ett problem",
        "error_note_empty": "Skriv en anteckning.",
        "error_note_long": "Anteckningen får vara högst 2000 tecken.",
        "error_note_chars": "Anteckningen innehåller tecken som inte kan sparas.",
        "entered_in_error": "Felregistrerat värde",
        "not_found_title": "Sidan finns inte",
        "not_found": "Det finns ingen sådan sida, eller så har du inte tillgång till den.",
        "forbidden_title": "Åtgärden nekades",
        "forbidden": "Formuläret var för gammalt eller kom inte från den här sidan. Försök igen.",
        "conflict_title": "Det gick inte",
        "clinicians_only": "Sidorna under /vard är för vårdpersonal.",
        "login_again": "Logga in igen",
        "minutes": "min",
        "hours": "tim",
        "days": "d",
    },
    "en": {
        "service": "Self-care – care team",
        "skip": "Skip to main content",
        "switch_lang": "Svenska",
        "switch_lang_code": "sv",
        "logout": "Sign out",
        "signed_in_as": "Signed in as",
        "login": "Sign in",
        "login_title": "Sign in",
        "login_dev_intro": "Development mode: choose one of the sample people to sign in as.",
        "login_choose": "Who do you want to sign in as?",
        "login_eid": "Sign in with e-identification",
        "login_eid_missing": (
            "Sign-in with e-identification is not running on this server yet. "
            "Contact whoever runs the service."
        ),
        "login_expired": "You were signed out because you had not done anything for a while.",
        "login_oidc_intro": "You sign in at the care sign-in service and then come back here.",
        "login_failed_state": (
            "The sign-in could not be completed: it did not start here, or took too long. "
            "Please try again."
        ),
        "login_failed_denied": "The sign-in was cancelled. Please try again.",
        "login_failed_token": "The sign-in could not be verified. Please try again.",
        "login_failed_unknown_user": (
            "You have no account in this service, or your account is closed. "
            "Contact your care unit."
        ),
        "login_failed_issuer_down": (
            "The sign-in service is not answering right now. Please try again in a while."
        ),
        "login_ended": "You are signed out.",
        "to_mina": "To My self-care",
        "role_clinician": "care team",
        "role_patient": "patient",
        "role_proxy": "relative",
        "role_admin": "operations",
        "worklist": "Worklist",
        "worklist_intro": "Flags for the patients of your teams, most severe first.",
        "filters": "Filter",
        "filter_team": "Team",
        "filter_all_teams": "All teams",
        "filter_severity": "Severity",
        "filter_any": "All",
        "filter_status": "Status",
        "filter_overdue": "Overdue only",
        "filter_apply": "Show",
        "no_flags": "No flags to show.",
        "col_patient": "Patient",
        "col_unit": "Care unit",
        "col_flag": "Flag",
        "col_severity": "Severity",
        "col_age": "Age",
        "col_due": "Due",
        "col_upload": "Last upload",
        "col_messages": "Unread messages",
        "flags_count": "flags",
        "severity_high": "High",
        "severity_moderate": "Moderate",
        "severity_low": "Low",
        "status_open": "Open",
        "status_acknowledged": "Acknowledged",
        "status_resolved": "Resolved",
        "overdue": "Overdue",
        "due_by": "by",
        "never": "never",
        "none": "none",
        "back_to_worklist": "Back to the worklist",
        "flag": "Flag",
        "why": "Why the flag was raised",
        "plan_version": "Self-care plan, version",
        "rule": "Rule",
        "rule_version": "version",
        "readings": "Readings",
        "readings_latest_of": "The latest {shown} of the {total} readings the rule used.",
        "col_time": "Time",
        "col_type": "Type",
        "col_value": "Value",
        "thresholds": "Thresholds",
        "computed": "Computed",
        "fired_times": "Times the rule fired",
        "created": "Flagged",
        "acknowledged_by": "Acknowledged by",
        "resolved_by": "Resolved by",
        "acknowledge": "Acknowledge",
        "acknowledge_hint": "Acknowledge once you have seen the flag. It stays until resolved.",
        "resolve": "Resolve",
        "resolve_hint": "Resolve when the flag has been dealt with.",
        "add_note": "Add a note",
        "note_label": "Note (optional)",
        "note_label_required": "Note",
        "note_hint": "Seen only by the care team, never by the patient or relatives.",
        "notes": "Notes",
        "no_notes": "No notes yet.",
        "flash_acknowledged": "The flag is acknowledged.",
        "flash_resolved": "The flag is resolved.",
        "flash_noted": "The note is saved.",
        "error_summary": "There is a problem",
        "error_note_empty": "Write a note.",
        "error_note_long": "The note may be at most 2000 characters.",
        "error_note_chars": "The note contains characters that cannot be saved.",
        "entered_in_error": "Entered in error",
        "not_found_title": "Page not found",
        "not_found": "There is no such page, or you may not see it.",
        "forbidden_title": "Refused",
        "forbidden": "The form was too old or did not come from this page. Please try again.",
        "conflict_title": "That did not work",
        "clinicians_only": "The pages under /vard are for the care team.",
        "login_again": "Sign in again",
        "minutes": "min",
        "hours": "h",
        "days": "d",
    },
}

_MONTHS = {
    "sv": ["jan", "feb", "mars", "apr", "maj", "juni", "juli", "aug", "sep", "okt", "nov", "dec"],
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
}


READING_TYPES: dict[str, dict[str, str]] = {
    "sv": {
        "blood_pressure": "Blodtryck",
        "glucose": "Glukos",
        "cgm_glucose": "Glukos (CGM)",
        "weight": "Vikt",
        "spo2": "Syremättnad",
        "pulse": "Puls",
        "temperature": "Temperatur",
        "steps": "Steg",
        "peak_flow": "PEF",
        "symptom_score": "Symtompoäng",
        "respiratory_rate": "Andningsfrekvens",
        "ketones": "Ketoner",
    },
    "en": {
        "blood_pressure": "Blood pressure",
        "glucose": "Glucose",
        "cgm_glucose": "Glucose (CGM)",
        "weight": "Weight",
        "spo2": "SpO2",
        "pulse": "Pulse",
        "temperature": "Temperature",
        "steps": "Steps",
        "peak_flow": "Peak flow",
        "symptom_score": "Symptom score",
        "respiratory_rate": "Breathing rate",
        "ketones": "Ketones",
    },
}


def reading_type(value: str, lang: str) -> str:
    """A reading type in words ("Vikt"); an unknown type as it is."""
    return READING_TYPES.get(lang, READING_TYPES["sv"]).get(value, value)


def shown(value: object, lang: str) -> str:
    """A value of a rule's explanation as the team reads it: times local, decimal commas."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return number(value, lang)
    text_value = str(value)
    if "T" in text_value and text_value[:4].isdigit():
        try:
            return local_time(datetime.fromisoformat(text_value), lang)
        except ValueError:
            return text_value
    try:
        float(text_value)
    except ValueError:
        return text_value
    return number(text_value, lang)


def text(lang: str, key: str) -> str:
    """One text in ``lang`` (Swedish when missing there)."""
    return TEXTS.get(lang, TEXTS["sv"]).get(key) or TEXTS["sv"][key]


def local_time(value: str | datetime | None, lang: str) -> str:
    """A time as the team reads it: "4 dec 2026 07:31" in Swedish time."""
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = when.astimezone(TIME_ZONE)
    month = _MONTHS.get(lang, _MONTHS["sv"])[local.month - 1]
    return f"{local.day} {month} {local.year} {local:%H:%M}"


def local_date(value: str | date | None, lang: str) -> str:
    """A day as the team reads it: "31 mars 2027"."""
    if value is None:
        return ""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    month = _MONTHS.get(lang, _MONTHS["sv"])[day.month - 1]
    return f"{day.day} {month} {day.year}"


def duration(seconds: float, lang: str) -> str:
    """How long, in the largest whole unit: "45 min", "3 tim", "2 d"."""
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return f"{int(seconds // 60)} {text(lang, 'minutes')}"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} {text(lang, 'hours')}"
    return f"{int(seconds // 86400)} {text(lang, 'days')}"


def number(value: str | float | int, lang: str) -> str:
    """A number with a decimal comma in Swedish ("38,5")."""
    shown = str(value)
    return shown.replace(".", ",") if lang == "sv" else shown
