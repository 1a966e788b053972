"""One Open mHealth data point (or a list) as sync wire readings."""

from __future__ import annotations

from typing import Any

from sync.imports.omh.errors import Errors
from sync.imports.omh.fields import VALUES, context_of
from sync.imports.omh.schemas import BY_NAME, INTERSTITIAL, OTHER_SPECIMENS, SCHEMAS, Schema
from sync.imports.omh.times import time_frame
from sync.imports.result import ImportResult, Rejection, bounded_id, content_id
from sync.normalise import ItemError, ItemErrorCode

CLIENT_ID_PREFIX = "omh:"


def omh_to_readings(doc: Any) -> ImportResult:
    """Convert Open mHealth data points (one, or a list) to sync wire readings."""
    result = ImportResult()
    if isinstance(doc, list):
        for index, item in enumerate(doc):
            _convert(item, f"[{index}]", result)
    else:
        _convert(doc, "", result)
    return result


def _convert(doc: Any, where: str, result: ImportResult) -> None:
    reading, client_id, errors = _data_point(doc)
    if errors:
        result.rejected.append(Rejection(where, client_id, tuple(errors)))
    elif reading is not None:
        result.readings.append(reading)


def _data_point(doc: Any) -> tuple[dict[str, Any] | None, str | None, list[ItemError]]:
    """Return the reading of one data point (or bare body), its client_id, and errors."""
    if not isinstance(doc, dict):
        errors = Errors("")
        errors.invalid("", "an Open mHealth data point must be a JSON object")
        return None, None, errors
    if "header" in doc or "body" in doc:
        errors = Errors("")
        header = doc.get("header")
        client_id = _header_id(header)
        named = _header_schema(header, errors)
        body = doc.get("body")
        if not isinstance(body, dict):
            errors.invalid("body", "a data point needs a body object")
            return None, client_id, errors
        body_errors = Errors("body.")
        reading = _body(body, named, body_errors)
        errors.extend(body_errors)
    else:
        client_id = None
        errors = Errors("")
        reading = _body(doc, None, errors)
    if errors or reading is None:
        return None, client_id, errors
    reading = {"client_id": client_id or content_id(CLIENT_ID_PREFIX, reading), **reading}
    return reading, reading["client_id"], []


def _header_id(header: Any) -> str | None:
    if isinstance(header, dict) and isinstance(header.get("id"), str) and header["id"]:
        return bounded_id(CLIENT_ID_PREFIX, header["id"])
    return None


def _header_schema(header: Any, errors: Errors) -> Schema | None:
    """Return the schema a header names; ``None`` when it names none."""
    if header is None:
        return None
    if not isinstance(header, dict):
        errors.invalid("header", "the header must be an object")
        return None
    schema_id = header.get("schema_id")
    if schema_id is None:
        return None
    if not isinstance(schema_id, dict) or not all(
        isinstance(schema_id.get(key), str) for key in ("name", "version")
    ):
        errors.invalid("header.schema_id", "schema_id needs a name and a version")
        return None
    namespace, name, version = schema_id.get("namespace"), schema_id["name"], schema_id["version"]
    schema = BY_NAME.get(name)
    if namespace not in (None, "omh") or schema is None:
        known = ", ".join(f"omh:{n}" for n in sorted(BY_NAME))
        errors.add(
            "header.schema_id",
            ItemErrorCode.unknown_type,
            f"schema {namespace}:{name} is not supported (supported: {known})"[:300],
        )
        return None
    if version.split(".")[0] not in schema.majors:
        majors = ", ".join(f"{m}.x" for m in sorted(schema.majors))
        errors.add(
            "header.schema_id.version",
            ItemErrorCode.unknown_type,
            f"version {version[:16]!r} of {name} is not supported (supported: {majors})",
        )
        return None
    return schema


def _body(body: dict[str, Any], named: Schema | None, errors: Errors) -> dict[str, Any] | None:
    """Convert one body to a wire reading without client_id, or record why not."""
    found = [schema for schema in SCHEMAS if schema.value_field in body]
    if "diastolic_blood_pressure" in body and BY_NAME["blood-pressure"] not in found:
        found.append(BY_NAME["blood-pressure"])
    if len(found) > 1:
        names = ", ".join(schema.name for schema in found)
        errors.invalid("", f"the body holds more than one measurement ({names})")
        return None
    if not found:
        if named is not None:
            errors.invalid(named.value_field, f"{named.value_field} is required")
        elif not errors:
            known = ", ".join(sorted(BY_NAME))
            errors.add(
                "",
                ItemErrorCode.unknown_type,
                f"not a supported Open mHealth body (supported: {known})",
            )
        return None
    schema = found[0]
    if named is not None and named is not schema:
        errors.invalid("", f"the header names {named.name} but the body is {schema.name}")
        return None

    value, unit = VALUES[schema.name](schema, body, errors)
    context = context_of(schema, body, errors)
    times = time_frame(body.get("effective_time_frame"), errors)
    type_name = schema.type
    specimen = (context or {}).get("specimen")
    if specimen in OTHER_SPECIMENS:
        errors.invalid("specimen_source", f"glucose in {specimen} is not a blood glucose")
    elif specimen == INTERSTITIAL:
        type_name = "cgm_glucose"  # a sensor (or a scan of one) reads interstitial fluid
    if times is None or value is None or unit is None or context is None or errors:
        return None

    start, end = times
    reading: dict[str, Any] = {"type": type_name, "time": start.isoformat()}
    if schema.interval:
        if end is None:
            errors.invalid(
                "effective_time_frame",
                "a step count covers an interval: a time_interval is required",
            )
            return None
        reading["end_time"] = end.isoformat()
    elif end is not None:
        context["interval_end"] = end.isoformat()
    reading["value"] = value
    reading["unit"] = unit
    if context:
        reading["context"] = context
    return reading


__all__ = ["CLIENT_ID_PREFIX", "omh_to_readings"]
