"""The personnummer (and samordningsnummer) in its one stored form."""

from __future__ import annotations

from personnummer import personnummer

from app.errors import ErrorItem, Unprocessable


def canonical_personnummer(value: str) -> str:
    """The 12-digit form of a valid personnummer or samordningsnummer; 422 otherwise."""
    try:
        parsed = personnummer.Personnummer(value)
    except (personnummer.PersonnummerException, ValueError, TypeError) as exc:
        raise Unprocessable(
            "Invalid personnummer.",
            errors=[
                ErrorItem(
                    loc="personnummer",
                    code="invalid",
                    message="Not a valid "
                    "personnummer or samordningsnummer (checked with the Luhn digit).",
                )
            ],
        ) from exc
    return str(parsed.format(True))
