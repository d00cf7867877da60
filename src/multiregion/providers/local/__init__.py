"""The embedded local provider: everything runs on this machine, no cloud account needed."""

from multiregion.registry import Provider

provider = Provider(
    name="local",
    extra=None,
    router="multiregion.providers.local.router:LocalRouter",
    store="multiregion.providers.local.store:LocalStore",
    bucket="multiregion.providers.local.bucket:LocalBucket",
    probe="multiregion.providers.local.probe:LocalProbe",
)
