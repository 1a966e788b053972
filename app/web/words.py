"""The words of the patient list, the patient overview and the plan editor (sv and en).

Kept beside ``texts`` (the first pages' words), which they fall back to.
"""

from __future__ import annotations

from collections.abc import Callable

from app.web import texts

WORDS: dict[str, dict[str, str]] = {
    "sv": {
        "patients": "Patienter",
        "patients_intro": "Patienterna i dina team.",
        "nav_worklist": "Arbetslista",
        "nav_patients": "Patienter",
        "no_patients": "Du har inga patienter i dina team.",
        "col_open_flags": "Öppna flaggor",
        "col_adherence": "Mätningar enligt plan",
        "adherence_caption": (
            "Mätningar enligt plan: de mätningar som kom in de senaste 14 dagarna, delat med "
            "de mätningar som planens schema bad om (i patientens tidszon). Extra mätningar "
            "av samma typ räknas inte."
        ),
        "adherence_title": "{received} av {scheduled} schemalagda mätningar de senaste 14 dagarna",
        "no_schedule": "inget schema",
        "most_severe": "allvarligast",
        "back_to_patients": "Tillbaka till patienterna",
        "age": "Ålder",
        "years": "år",
        "care_units": "Vårdenhet",
        "care_contact": "Fast vårdkontakt",
        "no_contact": "Ingen fast vårdkontakt är angiven.",
        "timeline": "Tidslinje",
        "zoom": "Visa period",
        "zoom_24h": "24 timmar",
        "zoom_7d": "7 dagar",
        "zoom_30d": "30 dagar",
        "zoom_90d": "90 dagar",
        "period": "Perioden",
        "latest": "Senaste",
        "lowest": "lägst",
        "highest": "högst",
        "readings_count": "mätningar",
        "no_readings": "Inga mätningar under perioden.",
        "show_table": "Visa som tabell",
        "table_latest": "Visar de {n} senaste mätningarna.",
        "limits": "Gränser i planen",
        "no_limits": "Planen har ingen gräns för den här mätningen i samma enhet.",
        "limit_delta": "lägsta vikt de senaste {hours} tim + {gain}",
        "limit_mean": "medelvärde",
        "limit_active": "vid aktivitet",
        "downsampled": "Kurvan visar {shown} av {n} punkter (lägsta och högsta i varje avsnitt).",
        "events": "Händelser",
        "no_events": "Inga händelser under perioden.",
        "event_flag": "Flagga",
        "event_advice": "Råd",
        "event_plan": "Ny planversion",
        "event_milestone": "Delmål nått",
        "event_note": "Anteckning",
        "event_message": "Meddelande",
        "col_event": "Händelse",
        "col_what": "Vad",
        "open_flags": "Öppna flaggor",
        "no_open_flags": "Inga öppna flaggor.",
        "goals": "Mål",
        "no_goals": "Inga mål än.",
        "progress": "Framsteg",
        "milestones": "Delmål",
        "reached": "nått",
        "agreements": "Överenskommelser",
        "no_agreements": "Inga överenskommelser.",
        "edit_plan": "Ändra egenvårdsplanen",
        "plan_editor": "Egenvårdsplan",
        "plan_intro": (
            "Ändra gränserna och schemat. Förhandsgranska först: då ser du hur många flaggor "
            "och råd den nya planen hade gett de senaste 30 dagarna."
        ),
        "plan_none": "Patienten har ingen egenvårdsplan än.",
        "plan_rules": "Regler och gränser",
        "param_default": "Standard",
        "param_yes": "Ja",
        "schedule": "Schema",
        "schedule_times": "Tider",
        "schedule_times_hint": "Klockslag, till exempel 07:30, 21:00",
        "schedule_days": "Dagar",
        "days_daily": "Varje dag",
        "days_weekdays": "Vardagar",
        "days_weekly": "En gång i veckan",
        "contact_readonly": "Den fasta vårdkontakten ändras för sig, inte i planen.",
        "preview": "Förhandsgranska",
        "save": "Spara",
        "burden": "Flaggor och råd per vecka, de senaste 30 dagarna",
        "burden_intro": (
            "Så många flaggor och råd den nuvarande och den ändrade planen hade gett på "
            "patientens mätningar de senaste 30 dagarna."
        ),
        "col_rule": "Regel",
        "col_flags_week": "Flaggor per vecka",
        "col_advice_week": "Råd per vecka",
        "now_plan": "nu",
        "new_plan": "ändrad",
        "burden_readings": "Beräknat på {n} mätningar.",
        "flash_plan_saved": "Egenvårdsplanen är sparad som version {version}.",
        "error_number": "Skriv ett tal, till exempel {example}.",
        "error_range": "Värdet måste vara mellan {low} och {high} {unit}.",
        "error_unit": "Enheten passar inte den här mätningen.",
        "error_time": "Skriv klockslag som 07:30, skilda med kommatecken.",
        "error_plan": "Planen kunde inte sparas: {message}",
        "unchanged": "Du har inte ändrat något.",
        "version": "version",
        "comp_systolic": "Övertryck",
        "comp_diastolic": "Undertryck",
        "comp_value": "Värde",
        "event_table": "Händelser som tabell",
    },
    "en": {
        "patients": "Patients",
        "patients_intro": "The patients of your teams.",
        "nav_worklist": "Worklist",
        "nav_patients": "Patients",
        "no_patients": "There are no patients in your teams.",
        "col_open_flags": "Open flags",
        "col_adherence": "Readings as planned",
        "adherence_caption": (
            "Readings as planned: the readings received in the last 14 days divided by the "
            "readings the plan's schedule asked for (in the patient's time zone). Extra "
            "readings of the same type do not count."
        ),
        "adherence_title": "{received} of {scheduled} scheduled readings in the last 14 days",
        "no_schedule": "no schedule",
        "most_severe": "most severe",
        "back_to_patients": "Back to the patients",
        "age": "Age",
        "years": "years",
        "care_units": "Care unit",
        "care_contact": "Named care contact",
        "no_contact": "No named care contact is set.",
        "timeline": "Timeline",
        "zoom": "Show period",
        "zoom_24h": "24 hours",
        "zoom_7d": "7 days",
        "zoom_30d": "30 days",
        "zoom_90d": "90 days",
        "period": "The period",
        "latest": "Latest",
        "lowest": "lowest",
        "highest": "highest",
        "readings_count": "readings",
        "no_readings": "No readings in the period.",
        "show_table": "Show as a table",
        "table_latest": "Showing the latest {n} readings.",
        "limits": "Limits in the plan",
        "no_limits": "The plan has no limit for this measurement in the same unit.",
        "limit_delta": "lowest weight of the last {hours} h + {gain}",
        "limit_mean": "mean",
        "limit_active": "when active",
        "downsampled": "The line shows {shown} of {n} points (lowest and highest of each part).",
        "events": "Events",
        "no_events": "No events in the period.",
        "event_flag": "Flag",
        "event_advice": "Advice",
        "event_plan": "New plan version",
        "event_milestone": "Milestone reached",
        "event_note": "Note",
        "event_message": "Message",
        "col_event": "Event",
        "col_what": "What",
        "open_flags": "Open flags",
        "no_open_flags": "No open flags.",
        "goals": "Goals",
        "no_goals": "No goals yet.",
        "progress": "Progress",
        "milestones": "Milestones",
        "reached": "reached",
        "agreements": "Agreements",
        "no_agreements": "No agreements.",
        "edit_plan": "Change the self-care plan",
        "plan_editor": "Self-care plan",
        "plan_intro": (
            "Change the limits and the schedule. Preview first: you see how many flags and "
            "advice the new plan would have given over the last 30 days."
        ),
        "plan_none": "The patient has no self-care plan yet.",
        "plan_rules": "Rules and limits",
        "param_default": "Default",
        "param_yes": "Yes",
        "schedule": "Schedule",
        "schedule_times": "Times",
        "schedule_times_hint": "Times of day, for example 07:30, 21:00",
        "schedule_days": "Days",
        "days_daily": "Every day",
        "days_weekdays": "Weekdays",
        "days_weekly": "Once a week",
        "contact_readonly": "The named care contact is changed on its own, not in the plan.",
        "preview": "Preview",
        "save": "Save",
        "burden": "Flags and advice per week, last 30 days",
        "burden_intro": (
            "How many flags and advice the current and the changed plan would have given on "
            "the patient's readings of the last 30 days."
        ),
        "col_rule": "Rule",
        "col_flags_week": "Flags per week",
        "col_advice_week": "Advice per week",
        "now_plan": "now",
        "new_plan": "changed",
        "burden_readings": "Computed on {n} readings.",
        "flash_plan_saved": "The self-care plan is saved as version {version}.",
        "error_number": "Enter a number, for example {example}.",
        "error_range": "The value must be between {low} and {high} {unit}.",
        "error_unit": "The unit does not fit this measurement.",
        "error_time": "Enter times such as 07:30, separated by commas.",
        "error_plan": "The plan could not be saved: {message}",
        "unchanged": "You have not changed anything.",
        "version": "version",
        "comp_systolic": "Systolic",
        "comp_diastolic": "Diastolic",
        "comp_value": "Value",
        "event_table": "Events as a table",
    },
}


def word(lang: str, key: str) -> str:
    """One text in ``lang``: these pages' own, else the first pages' (``texts``)."""
    own = WORDS.get(lang, WORDS["sv"]).get(key) or WORDS["sv"].get(key)
    return own if own is not None else texts.text(lang, key)


def for_lang(lang: str) -> Callable[[str], str]:
    """The ``t`` of a template in ``lang``."""
    return lambda key: word(lang, key)
