"""facestream_client: typed sync and async clients for the facestream REST API."""

from facestream_client._core import ImageInput
from facestream_client.aio import AsyncFacestreamClient
from facestream_client.errors import FacestreamError
from facestream_client.models import (
    AcceptedImage,
    BBox,
    Candidate,
    EnrollResult,
    ErasureReceipt,
    Face,
    Health,
    IdentifyResult,
    Person,
    PersonPage,
    PersonSummary,
    RejectedImage,
    Replica,
    Stats,
    Tombstone,
)
from facestream_client.sync import FacestreamClient

__all__ = [
    "AcceptedImage",
    "AsyncFacestreamClient",
    "BBox",
    "Candidate",
    "EnrollResult",
    "ErasureReceipt",
    "Face",
    "FacestreamClient",
    "FacestreamError",
    "Health",
    "IdentifyResult",
    "ImageInput",
    "Person",
    "PersonPage",
    "PersonSummary",
    "RejectedImage",
    "Replica",
    "Stats",
    "Tombstone",
]
__version__ = "0.1.0"
