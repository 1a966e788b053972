"""The OpenAPI schema documents every problem answer and the bearer requirement."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.openapi import API_PROBLEMS, PUBLIC_PROBLEMS


def test_every_operation_documents_its_problem_answers(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["Problem"]["required"] == [
        "type", "title", "status", "detail"
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
