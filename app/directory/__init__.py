"""The directory: organisations, care units, teams, clinicians, logins; team requests."""
