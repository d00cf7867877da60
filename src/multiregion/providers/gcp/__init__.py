"""GCP adapters: Cloud DNS routing policies, Compute health checks, Firestore, Cloud Storage.

Importing this package imports nothing of Google's SDKs; each part's module does, when built.
"""

from multiregion.registry import Provider

provider = Provider(
    name="gcp",
    extra="gcp",
    router="multiregion.providers.gcp.clouddns:CloudDnsRouter",
    store="multiregion.providers.gcp.firestore:FirestoreStore",
    bucket="multiregion.providers.gcp.storage:GcsBucket",
    probe="multiregion.providers.gcp.healthchecks:ComputeHealthProbe",
)
