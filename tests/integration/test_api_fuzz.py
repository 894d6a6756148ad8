"""Property-based test of the whole REST API with schemathesis, against the real app on PostgreSQL.

Every operation of /api/v1/openapi.json gets generated requests, valid and invalid (a fixed seed and a bounded
number of examples, so a run is repeatable and takes about a minute on 2 cores), sent as a signed-in admin to a
project that has images and a mask, so that generated ids 1 and 2 reach real rows. Each answer must not be a
5xx, must have a status code and headers the document declares for the operation, and must match the declared
media type and schema; a request the schema refuses must be refused (4xx), and one it allows must not get a 4xx
other than 401, 403, 404, 409 or 429, except for the few rules JSON Schema cannot say (UNSAYABLE below). A
failure prints the failing request as a curl command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from server.app import API_PREFIX
from server.models import Image, MaskSource, Role
from server.store.images import add_image
from server.store.masks import add_mask_version
from tests.factories import image_bytes, make_project, mask_png

# A deeper run for a developer: MARSLABEL_FUZZ_EXAMPLES=200 MARSLABEL_FUZZ_SEED=7 (another seed, other requests).
EXAMPLES_PER_OPERATION = int(os.environ.get("MARSLABEL_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("MARSLABEL_FUZZ_SEED", "20261204"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
# Schema-valid requests that the server still refuses with a 422, for a rule JSON Schema cannot say: a cross-field
# rule, a cap that the deployment sets, or what an uploaded file or a text field holds. positive_data_acceptance
# reports them; they are passed over here, and only they (any other schema-valid refusal fails the test).
UNSAYABLE = (
    "class ids must be 0..",  # ProjectCreate: ids 0..n-1 in list order
    "classes must have ids 0..",  # ProjectUpdate: the same
    "is also a class id",  # the ignore index against the ids
    "class names must be unique",
    "profile allows: at most",  # a round's steps and crop against MARSLABEL_MAX_ROUND_STEPS_* / _CROP_SIZE_*
    "body.effort: ",  # a JSON object in a multipart text field
    "mask is not an image",  # what an uploaded file holds
    "mask must be a PNG",
    "mask PNG",
    "mask_input",  # base64 of 128 KiB of float16 logits
    "every file was rejected",  # an upload whose files are no images
    "empty prompt",  # a SAM prompt: a point or a box, as many labels as points, inside this image
    "points but",
    "is outside the",
    "is not a box inside",
)


def _unsayable(error: FailureGroup, response: Any) -> bool:
    if response is None or response.status_code != 422:
        return False
    if any(failure.code != "ST202" for failure in error.exceptions if isinstance(failure, Failure)):
        return False
    detail = response.json().get("detail", "")
    return any(words in detail for words in UNSAYABLE)


# An event stream follows a live job until it ends: a generated request for a queued job would never return.
EXCLUDED_PATHS = {f"{API_PREFIX}/jobs/{{job_id}}/events"}


@pytest.fixture
def fuzz_project(session: Session) -> int:
    """Project 1 with images 1 and 2, a human mask on image 1: generated ids 1 and 2 reach real rows."""
    project = make_project(session)
    first = add_image(session, project, "a.png", image_bytes(40, 30, seed=1))
    add_image(session, project, "b.png", image_bytes(40, 30, seed=2))
    image = session.get(Image, first.image_id)
    assert image is not None
    add_mask_version(session, image, mask_png(40, 30), source=MaskSource.human, base_version=None, author_id=None)
    session.commit()
    return project.id


@pytest.fixture
def api_schema(app: FastAPI, fuzz_project: int) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi(f"{API_PREFIX}/openapi.json", app)


def _run_operation(operation: APIOperation, mode: GenerationMode, auth: dict[str, str], failures: list[str]) -> int:
    """Sends EXAMPLES_PER_OPERATION generated requests; every failing one is recorded, none stops the run."""
    sent = 0

    @seed(SEED)  # the same requests on every run
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        if case.query and "wait_seconds" in case.query:
            case.query["wait_seconds"] = 0  # a missing SAM embedding would otherwise be waited for, up to 10 s
        sent += 1
        response = None
        try:
            response = case.call(headers=auth)
            case.validate_response(response, checks=CHECKS, headers=auth)
        except FailureGroup as error:
            if not _unsayable(error, response):
                failures.append(f"{mode.value} {operation.label}: {str(error).strip()[:1500]}")
        except Exception as error:  # the in-process transport re-raises what a server would answer 500 to
            failures.append(f"{mode.value} {operation.label}: 500, unhandled {type(error).__name__}: {error}"[:1500])

    try:
        run()
    except Unsatisfiable:  # negative mode on an operation with nothing to negate (no parameters, no body)
        assert mode == GenerationMode.NEGATIVE, operation.label
    return sent


def test_api_conforms_to_its_openapi_document(
    api_schema: schemathesis.BaseSchema, headers: dict, request: pytest.FixtureRequest
) -> None:
    failures: list[str] = []
    operations = examples = 0
    failing_operations: set[str] = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.path in EXCLUDED_PATHS:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            before = len(failures)
            examples += _run_operation(operation, mode, headers[Role.admin], failures)
            if len(failures) > before:
                failing_operations.add(operation.label)
    figures = (
        f"schemathesis: {operations} operations, {examples} examples, {len(failures)} failing examples "
        f"in {len(failing_operations)} operations"
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(figures)
    if os.environ.get("MARSLABEL_FUZZ_REPORT"):  # every failure, for reading beside the first 40 below
        Path(os.environ["MARSLABEL_FUZZ_REPORT"]).write_text(figures + "\n\n" + "\n\n".join(failures))
    assert operations >= 30 and examples >= operations * EXAMPLES_PER_OPERATION
    assert not failures, figures + "\n\n" + "\n\n".join(failures[:40])
