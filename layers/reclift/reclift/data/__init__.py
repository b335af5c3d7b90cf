"""Data access: PynamoDB models and the store port, the only place that talks to DynamoDB and SQS."""
