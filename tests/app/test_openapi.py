"""The OpenAPI schema documents every problem answer and the bearer requirement."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.openapi import API_PROBLEMS, PUBLIC_PROBLEMS


def test_every_operation_documents_its_problem_answers(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    operations = 0
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            operations += 1
            expected = API_PROBLEMS if path.startswith("/v1/") else PUBLIC_PROBLEMS
            for status in expected:
                content = operation["responses"][str(status)]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
            if path.startswith("/v1/"):
                assert operation["security"] == [{"bearer": []}], (method, path)
            else:
                assert "security" not in operation, (method, path)
    assert operations > 30


def _typed(media_type: str, body: dict[str, Any]) -> bool:
    """A JSON answer names a model; any other media type is declared for what it is."""
    if media_type != "application/json":
        return True
    schema = body.get("schema", {})
    if "anyOf" in schema:  # one of several models (e.g. the two forms of a summary)
        return all("$ref" in option for option in schema["anyOf"])
    return "$ref" in schema or "$ref" in schema.get("items", {})


def test_every_operation_documents_its_answer_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    untyped = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            success = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
            if "204" in success:
                continue  # no content, nothing to describe
            typed = [
                media_type
                for answer in success.values()
                for media_type, body in answer.get("content", {}).items()
                if _typed(media_type, body)
            ]
            if not typed:
                untyped.append(f"{method.upper()} {path}")
    assert untyped == []
