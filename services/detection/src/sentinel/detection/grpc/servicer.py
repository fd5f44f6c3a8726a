"""DetectionService servicer: glue between gRPC and the detection use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from sentinel.api.detection.v1 import detection_service_pb2 as pb
from sentinel.api.detection.v1 import detection_service_pb2_grpc
from sentinel.detection.grpc import convert
from sentinel.detection.service import DetectionService
from sentinel.runtime.auth import current_tenant
from sentinel.runtime.errors import InvalidArgumentError

SERVICE = pb.DESCRIPTOR.services_by_name["DetectionService"]
Context = grpc.aio.ServicerContext[Any, Any]


class DetectionServicer(detection_service_pb2_grpc.DetectionServiceServicer):
    """Answers DetectionService."""

    def __init__(self, service: DetectionService) -> None:
        self._service = service

    async def ScoreSamples(
        self, request: pb.ScoreSamplesRequest, context: Context
    ) -> pb.ScoreSamplesResponse:
        outcome = await self._service.score_samples(
            tenant=current_tenant(), request=convert.score_request(request)
        )
        return convert.score_response(outcome)

    async def StreamScoreSamples(  # type: ignore[override]
        self, request_iterator: AsyncIterator[pb.StreamScoreSamplesRequest], context: Context
    ) -> AsyncIterator[pb.StreamScoreSamplesResponse]:
        tenant = current_tenant()
        async for request in request_iterator:
            try:
                outcome = await self._service.score_samples(
                    tenant=tenant, request=convert.score_request(request)
                )
            except InvalidArgumentError as exc:
                exc.metadata.setdefault("batch_id", request.batch.batch_id)
                raise
            yield convert.stream_response(outcome)

    async def ScoreSeries(self, request: pb.ScoreSeriesRequest, context: Context) -> pb.ScoreSeriesResponse:
        key, times, values, threshold = convert.series_inputs(request)
        outcome = await self._service.score_series(
            key=key,
            times=times,
            values=values,
            detectors=list(request.detectors),
            threshold=threshold,
            include_detector_scores=request.include_detector_scores,
        )
        return convert.series_response(outcome, self._service.config)

    async def ListDetectors(
        self, request: pb.ListDetectorsRequest, context: Context
    ) -> pb.ListDetectorsResponse:
        detectors = self._service.list_detectors(convert.detector_kind(request.kind))
        return convert.list_detectors_response(detectors, self._service.config)

    async def GetSeriesState(
        self, request: pb.GetSeriesStateRequest, context: Context
    ) -> pb.GetSeriesStateResponse:
        view = await self._service.series_state(
            tenant=current_tenant(), key=convert.series_key(request.series)
        )
        return convert.series_state_response(view)

    async def ExplainScore(
        self, request: pb.ExplainScoreRequest, context: Context
    ) -> pb.ExplainScoreResponse:
        at = convert.nanos(request.sample_time) if request.HasField("sample_time") else None
        explanation = await self._service.explain(
            tenant=current_tenant(), key=convert.series_key(request.series), at_unix_nano=at
        )
        return convert.explain_response(explanation)
