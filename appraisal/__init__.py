"""Satisfaction programmes 群众评议: encounters in, invitations out, patients' answers
(docs/appraisal.md)."""
