from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sentinel.runtime import errors
from sentinel.runtime.interceptors import STATUS_BY_ERROR, rich_status, status_code_for


def test_every_domain_error_class_has_a_status_code() -> None:
    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    for cls in subclasses(errors.SentinelError):
        if cls.__module__ == errors.__name__:
            assert cls in STATUS_BY_ERROR, cls


def test_subclass_maps_through_its_nearest_base() -> None:
    class IncidentNotFound(errors.NotFoundError):
        default_reason = "INCIDENT_NOT_FOUND"

    assert status_code_for(IncidentNotFound("no incident inc-1")) is grpc.StatusCode.NOT_FOUND


def test_invalid_argument_names_the_field_in_message_and_error_info() -> None:
    error = errors.InvalidArgumentError("events[17].latency_ms", "must be finite and >= 0")

    status = rich_status(error)

    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "events[17].latency_ms: must be finite and >= 0"
    proto_status = rpc_status.status_pb2.Status.FromString(
        dict(status.trailing_metadata)["grpc-status-details-bin"]
    )
    info = error_details_pb2.ErrorInfo()
    assert proto_status.details[0].Unpack(info)
    assert info.domain == "sentinel.dev"
    assert info.reason == "INVALID_ARGUMENT"
    assert info.metadata["field"] == "events[17].latency_ms"
