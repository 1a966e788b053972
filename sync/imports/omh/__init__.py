"""Open mHealth data points as sync wire readings.

Input: one data point ``{"header": …, "body": …}``, a bare body, or a JSON list of either.
Output: readings in the shape :func:`sync.normalise.normalise_reading` accepts, which then
go through the same ingest as any sync (same checks, dedup and rules); the catalogue's
checks (plausibility, units we accept, future times) are left to that gate.

Supported schemas (namespace ``omh``; any minor version of the major versions named):

=================  ======  ===================================================
schema             majors  type
=================  ======  ===================================================
blood-pressure     1–4     ``blood_pressure`` (mmHg → ``mm[Hg]``)
blood-glucose      1–4     ``glucose``; ``cgm_glucose`` from interstitial fluid
body-weight        1–3     ``weight`` (kg, g, lb → ``[lb_av]``)
heart-rate         1–2     ``pulse`` (beats/min → ``/min``)
oxygen-saturation  1–2     ``spo2`` (%)
step-count         1–3     ``steps`` (a number, or steps → ``{steps}`` from 3.0)
body-temperature   1–4     ``temperature`` (C → ``Cel``, F → ``[degF]``)
=================  ======  ===================================================

A bare body is recognised by its measurement field; a header's ``schema_id`` must agree.
Enumerated fields are checked against the union of the values of the supported versions.
OMH units we do not accept (K, oz, mg …) are rejected as ``unknown_unit``.

Time: ``effective_time_frame.date_time`` is the reading's time. A ``time_interval``
(start and end, or either with a duration) is ``time``/``end_time`` for steps; for the
other types, which are points in time, ``time`` is the start and the end is kept as
``context.interval_end`` (such data points are summaries, usually with a descriptive
statistic). Rejected on purpose, though some OMH versions allow them:

* no ``effective_time_frame`` (optional before blood-pressure 3, blood-glucose 3,
  body-weight 2, heart-rate 2, oxygen-saturation 2, step-count 2, body-temperature 3):
  a reading without a time cannot be placed in the patient's day or checked by a rule;
  the header's ``creation_date_time`` says when the record was made, not the measurement;
* ``date`` with ``part_of_day``: a part of a day is not a time;
* a step count with a descriptive statistic other than ``sum`` (an average or maximum per
  day is not the number of steps taken in the interval);
* a statistic that is not a level of the quantity (standard deviation, variance, count,
  sum, quartile deviation) for the point types;
* glucose measured in breath, saliva, sweat, tears or urine (not a blood glucose).

Context keys: ``position`` (body posture), ``location`` (measurement location),
``activity`` (relation to physical activity), ``meal``, ``sleep``, ``specimen``,
``statistic``, ``statistic_per`` (its denominator), ``interval_end``, ``system``,
``method``, ``oxygen_therapy``, ``oxygen_flow_l_min``, ``note`` (user notes, cut to the
context's text limit). Values are the OMH terms.

``client_id`` is ``omh:<header id>``; without a header id it is a hash of the converted
reading, so importing the same data twice answers ``duplicate``.
"""

from __future__ import annotations

from sync.imports.omh.convert import CLIENT_ID_PREFIX, omh_to_readings
from sync.imports.omh.schemas import SCHEMAS, SUPPORTED

__all__ = ["CLIENT_ID_PREFIX", "SCHEMAS", "SUPPORTED", "omh_to_readings"]
