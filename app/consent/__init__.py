"""Consent: the patient's proxies (ombud), their invitations, grants and legal representatives."""
