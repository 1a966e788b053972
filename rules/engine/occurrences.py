"""A threshold rule's run: occurrence counting and escalation of its flag, advice episodes."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from datetime import timedelta

from rules.catalogue import decimal_text
from rules.engine.comparison import Conditions, conditions_hold, note
from rules.engine.episodes import EPISODE_LOOKBACK, Episode, EpisodeStream, canonical_value
from rules.engine.findings import Finding
from rules.engine.history import History, Window
from rules.engine.kinds.threshold import ThresholdCheck
from rules.engine.runs import ReadingRun
from rules.engine.texts import LANGUAGES, reading_text
from rules.facts import ReadingFact
from rules.language import AdviceEpisode, Severity, ThresholdRule


@dataclass
class ThresholdRun(ReadingRun):
    """A threshold rule, with occurrence counting and escalation of its flag."""

    _fires: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before and after an anchor its flag's occurrences and episode reach."""
        back = fwd = timedelta(0)
        flag = self.rule.flag
        if flag is not None and flag.min_count > 1 and flag.window_hours is not None:
            back = fwd = timedelta(hours=flag.window_hours)
        if isinstance(self.rule, ThresholdRule) and self.rule.advice_episode is not None:
            back = max(back, EPISODE_LOOKBACK)
        return back, fwd

    def reach_of(self, changed: ReadingFact, history: History) -> tuple[timedelta, timedelta]:
        """Return the reach of a new or removed reading: the whole reach if it fires, else
        only the advice episode's walk back from the anchors after it."""
        # Occurrences are counted over firing readings alone (``Firings``), so a reading that
        # does not fire changes no other anchor's count: on a CGM stream most readings are
        # in range, and a flag window of a week would otherwise re-check a fortnight of
        # anchors for every batch. It may still end or split an advice episode, which the
        # anchors up to EPISODE_LOOKBACK after it walk back over.
        if self.fires(changed, history):
            return self.reach()
        rule = self.rule
        assert isinstance(rule, ThresholdRule)
        back = EPISODE_LOOKBACK if rule.advice_episode is not None else timedelta(0)
        return back, timedelta(0)

    def read_reach(
        self, anchor: ReadingFact, history: History, *, explained: bool
    ) -> tuple[timedelta, timedelta]:
        """Return what evaluating an anchor reads: the reading alone to check it (a threshold
        depends on its reading only), the occurrences and episode around it to explain it."""
        if explained and self.fires(anchor, history):
            return self.reach()
        return timedelta(0), timedelta(0)

    def may_fire(self, reading: ReadingFact, history: History) -> bool:
        """Tell whether re-evaluating an old anchor could find a firing: if the reading fires."""
        # Whether a threshold fires depends on its reading alone; only its flag can change.
        return self.fires(reading, history)

    def fires(self, reading: ReadingFact, history: History) -> bool:
        """Tell whether the threshold holds at a reading (checked once per run)."""
        # A threshold depends on its reading alone, so each reading is checked once per run:
        # counting occurrences around every anchor of a CGM stream would otherwise check the
        # same thousands of readings again for each anchor.
        known = self._fires.get(reading.id)
        if known is None:
            known = self._fires[reading.id] = self.check.holds(reading, history)
        return known

    def holds(self, anchor: ReadingFact, history: History) -> bool:
        """Tell whether the threshold fires at an anchor (its flag may count occurrences)."""
        return self.fires(anchor, history)

    def finding(self, anchor: ReadingFact, history: History) -> Finding | None:
        """Return the finding at an anchor: the flag escalated by occurrences, advice, episode."""
        rule = self.rule
        assert isinstance(rule, ThresholdRule) and isinstance(self.check, ThresholdCheck)
        if not self.fires(anchor, history):
            return None
        outcome = self.check.outcome(anchor, history)
        assert outcome is not None and outcome.held
        outcome = replace(
            outcome, computed=dict(outcome.computed), thresholds=dict(outcome.thresholds)
        )
        computed, thresholds = outcome.computed, outcome.thresholds
        severity: Severity | None = None
        count: int | None = None
        extra: dict[str, str] | None = None
        advice_spec = rule.advice
        if rule.flag is not None:
            severity = rule.flag.severity
            if rule.flag.min_count > 1 and rule.flag.window_hours is not None:
                window = timedelta(hours=rule.flag.window_hours)
                gap = timedelta(minutes=rule.flag.episode_minutes)
                count, outcome.used = self._occurrences(anchor, history, window, gap)
                computed["count_in_window"] = str(count)
                thresholds["min_count"] = {"value": str(rule.flag.min_count)}
                thresholds["window_hours"] = {
                    "value": str(rule.flag.window_hours),
                    "unit": "h",
                }
                if count < rule.flag.min_count:
                    severity = None
                extra = {
                    "sv": f" {count} tillfällen inom {rule.flag.window_hours} timmar "
                    f"(flagga vid minst {rule.flag.min_count}).",
                    "en": f" {count} occurrences within {rule.flag.window_hours} hours (flag at "
                    f"{rule.flag.min_count} or more).",
                }
            escalation = rule.flag.escalate
            if escalation is not None:
                required = {name: self.params[name].value for name in escalation.requires}
                for name, flag_value in required.items():
                    thresholds[name] = {"value": "true" if flag_value else "false"}
                raised = self.check.comparisons(anchor, escalation.conditions)
                note(raised, computed, thresholds)
                escalates = all(v is True for v in required.values()) and (
                    not escalation.conditions or conditions_hold(raised, escalation.match)
                )
                if severity is not None and escalates:
                    severity = escalation.severity
                if escalates and escalation.advice is not None:
                    advice_spec = escalation.advice
        values = {lang: reading_text(anchor, lang) for lang in LANGUAGES}
        episode = None
        if rule.advice_episode is not None and anchor.type in rule.advice_episode.types:
            episode = self._episode(rule.advice_episode, anchor, history)
        return self._finding(
            anchor, outcome, severity, self._advice(advice_spec, values), values, extra, episode
        )

    def _episode(self, spec: AdviceEpisode, anchor: ReadingFact, history: History) -> Episode:
        """Return the advice episode the anchor belongs to, as a walk back from it finds it.

        The episode starts at the earliest reading reached before a recovery (``end_after``
        of consecutive readings outside the episode condition), a gap longer than
        ``max_gap``, or :data:`EPISODE_LOOKBACK`. The anchor is always in its episode.
        Where the walk stops comes from an index of the stream (:class:`EpisodeStream`):
        inside a long low, walking from every anchor would cross the whole low each time.
        """
        stream = self._episode_stream(spec, history)
        position = stream.position[anchor.id]
        lowest = bisect.bisect_left(stream.times, anchor.time - EPISODE_LOOKBACK)
        stop = stream.walk_stop(position, lowest)
        start = stream.readings[stream.first_member(stop + 1, position)].time
        nadir = stream.nadir(stop + 1, position)
        first_at_level = not stream.member_fires(stop + 1, position)
        minutes = int((anchor.time - start).total_seconds() // 60)
        muted = spec.muted_by is not None and self.params[spec.muted_by].value is True
        zone = history.tz
        text = {
            "sv": f" Episod sedan kl. {start.astimezone(zone):%H:%M} ({minutes} min), "
            f"lägsta {reading_text(nadir, 'sv')}.",
            "en": f" Episode since {start.astimezone(zone):%H:%M} ({minutes} min), "
            f"lowest {reading_text(nadir, 'en')}.",
        }
        return Episode(
            json={
                "start": start.isoformat(),
                "minutes": str(minutes),
                # As measured: 49 mg/dL stays 49 mg/dL.
                "nadir": decimal_text(nadir.original_values.get("value", canonical_value(nadir))),
                "unit": nadir.original_unit,
                "nadir_reading_id": nadir.id,
                "first_at_level": "true" if first_at_level else "false",
            },
            text=text,
            first_at_level=first_at_level,
            muted=muted,
        )

    def _episode_stream(self, spec: AdviceEpisode, history: History) -> EpisodeStream:
        """Return the stream of the episode's types, indexed once per evaluation."""
        key = (self.rule.id, "episodes", "")
        if key not in history.cache:
            condition = Conditions((spec.condition,), self.params)
            readings = history.series(spec.types).readings
            holds: list[bool] = []
            fires: list[bool] = []
            for reading in readings:
                holds.append(condition.each(reading)[0])
                fires.append(holds[-1] and self.fires(reading, history))
            history.visit(len(readings))
            history.cache[key] = EpisodeStream(
                readings,
                holds,
                fires,
                end_after=Window.of(self.params, spec.end_after).duration,
                max_gap=Window.of(self.params, spec.max_gap).duration,
            )
        found: EpisodeStream = history.cache[key]
        return found

    def _occurrences(
        self,
        anchor: ReadingFact,
        history: History,
        window: timedelta,
        gap: timedelta,
    ) -> tuple[int, list[ReadingFact]]:
        """Return the most occurrences in a window span holding the anchor's, and theirs.

        Each occurrence of the span is given by its first reading; the anchor is added.
        """
        key = (self.rule.id, "firings", "")
        if key not in history.cache:
            readings = history.series(self.rule.types).readings
            firing = [r for r in readings if self.fires(r, history)]
            history.visit(len(readings))
            history.cache[key] = history.counted(Firings(firing, gap))
        firings: Firings = history.cache[key]
        count, firsts = firings.best_span(anchor, window)
        used = {r.id: r for r in (*firsts, anchor)}
        return count, sorted(used.values(), key=lambda r: (r.time, r.id))


class Firings:
    """The readings a threshold rule fires on, sorted, chained into occurrences once.

    A reading at most ``gap`` after the previous firing one continues its occurrence. An
    anchor chains only the firings within ``window`` of it, so an occurrence that began
    before that slice starts, for this anchor, at its first reading inside the slice; the
    other occurrences of the slice are the whole-history ones, found here by bisection.
    """

    def __init__(self, readings: list[ReadingFact], gap: timedelta) -> None:
        self.readings, self.gap = readings, gap
        self.times = [r.time for r in readings]
        self.position = {r.id: i for i, r in enumerate(readings)}
        times = self.times
        self.starts = [i for i in range(len(times)) if i == 0 or times[i] - times[i - 1] > gap]
        self.start_times = [times[i] for i in self.starts]
        self.visits = len(readings)

    def best_span(self, anchor: ReadingFact, window: timedelta) -> tuple[int, list[ReadingFact]]:
        """Return the most occurrences a ``window`` span holding the anchor's can hold,
        and the first reading of each (the earliest such span among equals)."""
        times, starts, start_times = self.times, self.starts, self.start_times
        position = self.position[anchor.id]
        low = bisect.bisect_left(times, anchor.time - window)
        high = bisect.bisect_right(times, anchor.time + window)
        # The slice's occurrences: number 0 starts at `low`, number j > 0 at starts[k0 + j - 1].
        k0 = bisect.bisect_right(starts, low)
        k1 = bisect.bisect_left(starts, high)

        def first_of(number: int) -> int:
            return low if number == 0 else starts[k0 + number - 1]

        own = bisect.bisect_right(starts, position, k0, k1) - k0
        earliest = times[first_of(own)] - window  # a span holding own starts no earlier
        if times[low] >= earliest:
            first_candidate = 0
        else:
            first_candidate = 1 + bisect.bisect_left(start_times, earliest, k0, k1) - k0
        best_first, best_count = own, 1
        # At most window / gap + 1 occurrences start within a window before the anchor's.
        for first in range(first_candidate, own + 1):
            reach = times[first_of(first)] + window
            last = 1 + bisect.bisect_right(start_times, reach, k0, k1) - k0
            if last - first > best_count:
                best_first, best_count = first, last - first
        self.visits += own + 1 - first_candidate + best_count
        firsts = [self.readings[first_of(n)] for n in range(best_first, best_first + best_count)]
        return best_count, firsts


__all__ = ["Firings", "ThresholdRun"]
