"""The local endpoint's capture source: the server commits its captured rows to the lake itself
(`pipelines.serving.capture.LakeCapture`), so there is nothing to bring in."""

from __future__ import annotations

from pipelines.ports import CaptureSchema, CaptureSync


class EndpointCommitsCapture:
    """CaptureSourcePort for the local endpoint: its capture table is always current."""

    def sync(self, model_name: str, schema: CaptureSchema) -> CaptureSync:
        return CaptureSync()
