"""AWS adapters: Route 53 routing and health checks, DynamoDB global tables, S3.

Importing this package imports nothing of boto3; each part's module does, when it is built.
"""

from multiregion.registry import Provider

provider = Provider(
    name="aws",
    extra="aws",
    router="multiregion.providers.aws.route53:Route53Router",
    store="multiregion.providers.aws.dynamodb:DynamoStore",
    bucket="multiregion.providers.aws.s3:S3Bucket",
    probe="multiregion.providers.aws.healthchecks:Route53Probe",
)
