"""RPCs of the published contract whose behaviour has not been built yet.

They answer UNIMPLEMENTED with a message naming what is missing, instead of grpc's generic
"Method not implemented!", so a caller knows it is a known gap and not a wrong address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.descriptor import ServiceDescriptor

from sentinel.runtime.errors import NotImplementedYetError

ServicerT = TypeVar("ServicerT", bound=type)


def pending_rpcs(service: ServiceDescriptor, missing: str) -> Callable[[ServicerT], ServicerT]:
    """Class decorator: every RPC of `service` that the class body does not define answers
    UNIMPLEMENTED with "<Service>/<Rpc> is not implemented yet: <missing>".
    """

    def decorate(cls: ServicerT) -> ServicerT:
        for method in service.methods:
            if _defined_below_generated_base(cls, method.name):
                continue
            setattr(cls, method.name, _not_yet(f"{service.name}/{method.name}", missing))
        return cls

    return decorate


def _defined_below_generated_base(cls: type, name: str) -> bool:
    # The generated `<Service>Servicer` base defines every RPC; count only what is written here.
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return not klass.__module__.endswith("_pb2_grpc")
    return False


def _not_yet(rpc: str, missing: str) -> Callable[..., Any]:
    async def handler(self: object, request: object, context: object) -> Any:
        raise NotImplementedYetError(f"{rpc} is not implemented yet: {missing}")

    handler.__name__ = rpc.rsplit("/", 1)[1]
    return handler
