"""Catalog importers: each turns a source's data into records for catalog.services."""
