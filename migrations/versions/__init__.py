"""Hand-written revisions; each must leave the schema equal to db.models (a test checks head)."""
