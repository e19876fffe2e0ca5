"""File store backends (local filesystem now; S3-compatible later, behind the same ABC)."""
