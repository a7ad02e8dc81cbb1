"""SCIM 2.0 resource semantics: schemas, validation, filters, PATCH and projection.

Pure functions over JSON documents; no I/O. The storage layer applies them inside its
transactions, and the API reads the schemas for discovery.
"""
