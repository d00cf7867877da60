"""The four provider-neutral interfaces and the capability flags each provider declares.

A provider that cannot do something says so in its capabilities and raises ``Unsupported``
when asked anyway; it never quietly does something else. The contract suite in
``multiregion.testing`` reads the same flags to decide what to ask of each provider.
"""

from multiregion.interfaces.bucket import BackupBucket, BucketCapabilities, Progress
from multiregion.interfaces.probe import HealthProbe, ProbeCapabilities
from multiregion.interfaces.router import RouterCapabilities, TrafficRouter
from multiregion.interfaces.store import ReplicatedStore, StoreCapabilities

__all__ = [
    "BackupBucket",
    "BucketCapabilities",
    "HealthProbe",
    "ProbeCapabilities",
    "Progress",
    "ReplicatedStore",
    "RouterCapabilities",
    "StoreCapabilities",
    "TrafficRouter",
]
