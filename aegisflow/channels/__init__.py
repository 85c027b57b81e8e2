"""Approval channels beyond the REST API: Slack, GraphQL."""
