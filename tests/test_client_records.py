"""The client's own types (client/records.py) against the API's OpenAPI document: the same
statuses and stop reasons, and no field that the API does not answer with."""

import typing

import pytest

from client import records

# Every TypedDict of the client, by name: each mirrors the schema of that name.
RECORDS = {name: value for name, value in vars(records).items()
           if typing.is_typeddict(value)}


@pytest.fixture
def schemas(client):
    return client.get("/v1/openapi.json").get_json()["components"]["schemas"]


def resolved(schemas, schema):
    """`schema`, or the one its $ref names."""
    return schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema


@pytest.mark.parametrize("enum, name", [(records.JobStatus, "JobStatus"),
                                        (records.StoppedReason, "StoppedReason"),
                                        (records.SweepStatus, "SweepStatus")])
def test_a_status_or_stop_reason_of_the_client_has_the_values_of_the_api(schemas, enum, name):
    assert sorted(member.value for member in enum) == sorted(schemas[name]["enum"])


def test_a_trials_status_is_a_job_status_or_pruned(schemas):
    status = schemas["SweepTrial"]["properties"]["status"]["enum"]
    assert sorted(status) == sorted([*(s.value for s in records.JobStatus), "pruned"])


def test_the_main_records_are_all_mirrored():
    assert {"Job", "JobSummary", "Corpus", "Model", "Event", "Sweep", "Health",
            "Whoami"} <= RECORDS.keys()


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_record_of_the_client_has_no_field_the_api_does_not_answer_with(schemas, name):
    schema = schemas[name]
    hints = typing.get_type_hints(RECORDS[name])  # NotRequired[...] stripped
    assert set(hints) - set(schema["properties"]) == set()
    # A field the client types as a Literal holds the API's values, exactly.
    for field, hint in hints.items():
        if typing.get_origin(hint) is typing.Literal:
            allowed = resolved(schemas, schema["properties"][field]).get("enum")
            assert sorted(typing.get_args(hint)) == sorted(allowed), field
