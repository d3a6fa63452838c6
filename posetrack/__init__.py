"""posetrack: multi-person pose tracking in video, and the official PoseTrack evaluation.

The per-frame data types and file formats are importable without torch::

    from posetrack import Poses, Detections, read_posetrack, write_tracks
"""

from .errors import FormatError, PosetrackError
from .formats import PoseTrackVideo, read_posetrack, write_tracks
from .frame import Detections, Poses

__version__ = "0.1.0"

__all__ = [
    "Detections", "FormatError", "PoseTrackVideo", "PosetrackError", "Poses", "read_posetrack",
    "write_tracks", "__version__",
]
