"""AWS adapters: S3, Glue, SageMaker, Batch, CloudWatch (tested under moto or botocore's Stubber)."""
