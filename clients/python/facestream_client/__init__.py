"""facestream_client: typed sync and async clients for the facestream REST API."""

from facestream_client._core import ImageInput
from facestream_client.aio import AsyncFacestreamClient
from facestream_client.errors import FacestreamError
from facestream_client.models import (
    AcceptedImage,
    BBox,
    Candidate,
    EnrollResult,
    ErasureAccepted,
    ErasureKind,
    ErasureReceipt,
    ErasureStatus,
    Face,
    Health,
    IdentifyResult,
    LogPosition,
    Person,
    PersonPage,
    PersonSummary,
    RejectedImage,
    Replica,
    ReplicaProgress,
    ShardProgress,
    Stats,
    TombstonePosition,
)
from facestream_client.sync import FacestreamClient

__all__ = [
    "AcceptedImage",
    "AsyncFacestreamClient",
    "BBox",
    "Candidate",
    "EnrollResult",
    "ErasureAccepted",
    "ErasureKind",
    "ErasureReceipt",
    "ErasureStatus",
    "Face",
    "FacestreamClient",
    "FacestreamError",
    "Health",
    "IdentifyResult",
    "ImageInput",
    "LogPosition",
    "Person",
    "PersonPage",
    "PersonSummary",
    "RejectedImage",
    "Replica",
    "ReplicaProgress",
    "ShardProgress",
    "Stats",
    "TombstonePosition",
]
__version__ = "0.1.0"
