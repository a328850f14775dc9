"""scaleplan.data: the pinned source manifest (manifest.json) and the database schema (SCHEMA.md), shipped as package data."""
