"""Patients as the people signed in meet them: who am I, my teams, the patient list, enrolment.

Above ``auth``, ``consent`` and ``directory`` (it asks them), while the ``patients`` package
below them holds only what they all need: the patient, care-team and unit records.
"""
