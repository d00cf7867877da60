"""Azure adapters: Traffic Manager routing and endpoint monitoring, Cosmos DB, Blob Storage.

Importing this package imports nothing of the Azure SDK; each part's module does, when built.
"""

from multiregion.registry import Provider

provider = Provider(
    name="azure",
    extra="azure",
    router="multiregion.providers.azure.trafficmanager:TrafficManagerRouter",
    store="multiregion.providers.azure.cosmos:CosmosStore",
    bucket="multiregion.providers.azure.blob:BlobBucket",
    probe="multiregion.providers.azure.monitoring:TrafficManagerProbe",
)
